"""One training path for every model in the registry."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from tlstudy.data import Splits
from tlstudy.models import build_model

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    model_options: dict = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: dict, model: str) -> "TrainConfig":
        train = params["train"]
        return cls(
            epochs=int(train["epochs"]),
            batch_size=int(train["batch_size"]),
            learning_rate=float(train["learning_rate"]),
            model_options=dict((params.get("models") or {}).get(model) or {}),
        )


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds, and deterministic kernels: same params, same numbers."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def compile_model(model: keras.Model, learning_rate: float) -> None:
    # Integer labels with the sparse form of categorical cross-entropy: the same loss as the
    # study's one-hot labels with categorical_crossentropy, without materialising one-hot arrays.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def train_model(name: str, data: Splits, config: TrainConfig, seed: int,
                callbacks: list[keras.callbacks.Callback] = ()) -> tuple[keras.Model, dict]:
    """Build ``name``, train it on ``data.train`` with validation on ``data.val``; return model and history."""
    seed_everything(seed)
    model = build_model(name, data.train.x.shape[1:], len(data.class_names), **config.model_options)
    compile_model(model, config.learning_rate)
    log.info("training %s (seed %d) on %d images for %d epochs", name, seed, len(data.train), config.epochs)
    history = model.fit(
        data.train.x, data.train.y,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(data.val.x, data.val.y),
        shuffle=True,
        verbose=2,
        callbacks=list(callbacks),
    )
    return model, history.history


def save_model(model: keras.Model, path: Path) -> None:
    """Save to a temporary ``.keras`` name, then rename: a crash never leaves half a model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)
