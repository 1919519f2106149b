"""A registry of model builders: a name maps to a function that returns an uncompiled Keras model.

A new model is one builder decorated with ``@register("name")``. Every builder takes the input
shape, the number of classes and its own keyword options from ``params.yaml``'s ``models.<name>``.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers

Builder = Callable[..., keras.Model]
REGISTRY: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    def decorator(fn: Builder) -> Builder:
        if name in REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        REGISTRY[name] = fn
        return fn

    return decorator


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options) -> keras.Model:
    try:
        builder = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}. "
                         "Fix train.models in params.yaml") from None
    return builder(input_shape, num_classes, **options)


@register("mlp")
def mlp(input_shape, num_classes, dropout: float = 0.5, units: int = 512) -> keras.Model:
    """The original study's MLP: Flatten, Dropout 0.5, Dense 512 ReLU (He normal), softmax."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(units, activation="relu", kernel_initializer="he_normal"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="mlp",
    )


@register("cnn")
def cnn(input_shape, num_classes, dropout: float = 0.5, units: int = 512) -> keras.Model:
    """The original study's two-convolution CNN."""
    if len(input_shape) == 2:  # grayscale images without a channel axis
        reshape = [layers.Reshape((*input_shape, 1))]
    else:
        reshape = []
    return keras.Sequential(
        [
            keras.Input(input_shape),
            *reshape,
            layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_normal"),
            layers.MaxPooling2D(2),
            layers.Dropout(dropout),
            layers.Conv2D(64, 3, activation="relu", kernel_initializer="he_normal"),
            layers.MaxPooling2D(2),
            layers.Dropout(dropout),
            layers.Flatten(),
            layers.Dense(units, activation="relu", kernel_initializer="he_normal"),
            layers.Dropout(dropout),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="cnn",
    )
