"""Test-split metrics from predictions: pure functions, tested with known answers."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict:
    """Loss, accuracy, error count and per-class accuracy (recall) from predicted probabilities."""
    y_true = np.asarray(y_true)
    labels = np.arange(len(class_names))
    y_pred = probabilities.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    per_class = {
        name: (float(cm[i, i] / support[i]) if support[i] else None) for i, name in enumerate(class_names)
    }
    return {
        # Cross-entropy as Keras computes it (probabilities clipped at 1e-7).
        "loss": float(-np.mean(np.log(np.clip(probabilities[np.arange(len(y_true)), y_true], 1e-7, 1.0)))),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "errors": int((y_pred != y_true).sum()),
        "n": int(len(y_true)),
        "per_class_accuracy": per_class,
    }
