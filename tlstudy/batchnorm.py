"""BatchNorm moving statistics recomputed on a model's own training images.

After few training steps, the moving averages (momentum 0.99) lag far behind the data: a ResNet50
can score 99% on its training images and near chance in inference mode. A transferred backbone
carries its source domain's statistics into the target domain, with the same effect. Recalibration
is a pass over the training images in training mode with every weight fixed: only the moving
statistics change, to the average of the per-batch statistics (as in SWA's ``bn_update``).

Only BatchNorm layers that trained are recalibrated. A frozen layer ran in inference mode, with the
statistics it was loaded with, all through training: the layers above it, the head included, learned
on the features those statistics produce, and recomputing them would move the features under the head.
"""

from __future__ import annotations

from typing import Iterator

import keras
import numpy as np


def batchnorm_layers(model: keras.Layer, trainable_only: bool = False) -> Iterator[keras.layers.BatchNormalization]:
    """Every BatchNorm layer inside ``model``, nested models included; with ``trainable_only``, those
    that train in training mode (the layer and every model around it trainable)."""
    for layer in getattr(model, "layers", []):
        if trainable_only and not layer.trainable:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        else:
            yield from batchnorm_layers(layer, trainable_only)


def recalibrate_batchnorm(model: keras.Model, x: np.ndarray, batch_size: int = 128) -> int:
    """Recompute the moving mean and variance of every trainable BatchNorm layer on ``x``; return how many."""
    if not model.trainable:
        return 0
    layers = list(batchnorm_layers(model, trainable_only=True))
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    try:
        seen = 0
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            for layer in layers:  # moving = (seen * moving + len(batch) * batch_stat) / (seen + len(batch))
                layer.momentum = seen / (seen + len(batch))
            model(batch, training=True)
            seen += len(batch)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return len(layers)
