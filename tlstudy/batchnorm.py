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

from typing import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf


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
    """Recompute the moving mean and variance of every trainable BatchNorm layer on ``x``; return how many.

    Each layer's moving statistics become the average of its per-batch statistics, weighted by batch
    size and summed in float64. The forward passes run as one traced function per model (and per set
    of trainable layers): on a ResNet50 at 32x32, 1,000 images cost about a third of eager passes
    (``python -m benchmarks.recalibration``), with statistics equal to float32 round-off.
    """
    if not model.trainable:
        return 0
    layers = list(batchnorm_layers(model, trainable_only=True))
    if not layers:
        return 0
    variables = [variable for layer in layers for variable in (layer.moving_mean, layer.moving_variance)]
    sums = [np.zeros(variable.shape, np.float64) for variable in variables]
    saved = [layer.momentum for layer in layers]
    try:
        for layer in layers:  # momentum 0: a pass in training mode leaves the batch's own statistics.
            layer.momentum = 0.0  # The trace reads it as a constant: it is traced, and always called, at 0.
        batch_statistics = _batch_statistics(model, layers, variables, x)
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            for total, statistic in zip(sums, batch_statistics(batch)):
                total += len(batch) * statistic.numpy()
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    for variable, total in zip(variables, sums):
        variable.assign((total / len(x)).astype(variable.dtype))
    return len(layers)


def _batch_statistics(model: keras.Model, layers: list, variables: list, x: np.ndarray) -> Callable:
    """A forward pass in training mode that returns ``variables`` after it, traced once for any batch
    size: the input signature leaves the batch dimension free, so a last, smaller batch does not trace
    again. Kept in the model's ``__dict__``, out of Keras' attribute tracking (and so out of saving)."""
    cache = model.__dict__.setdefault("_tlstudy_batch_statistics", {})
    key = (tuple(id(layer) for layer in layers), x.shape[1:], x.dtype.str)
    if key not in cache:
        @tf.function(input_signature=[tf.TensorSpec((None, *x.shape[1:]), x.dtype)])
        def batch_statistics(batch):
            model(batch, training=True)
            return [tf.identity(variable.value) for variable in variables]
        cache[key] = batch_statistics
    return cache[key]
