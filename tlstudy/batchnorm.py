"""BatchNorm moving statistics recomputed on a model's own training images.

After few training steps, the moving averages (momentum 0.99) lag far behind the data: a ResNet50
can score 99% on its training images and near chance in inference mode. A transferred backbone
carries its source domain's statistics into the target domain, with the same effect. Recalibration
is a pass over the training images in training mode with every weight fixed: only the moving
statistics change, to the average of the per-batch statistics (as in SWA's ``bn_update``).
"""

from __future__ import annotations

from typing import Iterator

import keras
import numpy as np


def batchnorm_layers(model: keras.Layer) -> Iterator[keras.layers.BatchNormalization]:
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        else:
            yield from batchnorm_layers(layer)


def recalibrate_batchnorm(model: keras.Model, x: np.ndarray, batch_size: int = 128) -> int:
    """Recompute every BatchNorm layer's moving mean and variance on ``x``; return how many layers."""
    layers = list(batchnorm_layers(model))
    if not layers:
        return 0
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    try:
        for layer in layers:
            layer.trainable = True  # a frozen BatchNorm runs in inference mode and would not update
        seen = 0
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            for layer in layers:  # moving = (seen * moving + len(batch) * batch_stat) / (seen + len(batch))
                layer.momentum = seen / (seen + len(batch))
            model(batch, training=True)
            seen += len(batch)
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum, layer.trainable = momentum, trainable
    return len(layers)
