import numpy as np
import pytest

from tlstudy.evaluation import classification_metrics


def test_classification_metrics_known_answer():
    y = np.array([0, 0, 1, 2])
    p = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.1, 0.7, 0.2], [0.0, 0.0, 1.0]])
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["accuracy"] == 0.75
    assert m["errors"] == 1 and m["n"] == 4
    assert m["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 1.0}
    expected_loss = -np.mean(np.log([0.9, 0.2, 0.7, 1.0]))
    assert m["loss"] == pytest.approx(expected_loss)


def test_class_absent_from_test_set_has_no_accuracy():
    m = classification_metrics(np.array([0, 0]), np.array([[1.0, 0.0], [0.0, 1.0]]), ["a", "b"])
    assert m["per_class_accuracy"] == {"a": 0.5, "b": None}
