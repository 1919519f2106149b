"""BatchNorm recalibration of a ResNet50: eager forward passes against the traced function, side by side.

    python -m benchmarks.recalibration                 # 1,000 images at 32x32, 3 repeats; about 2 minutes
    python -m benchmarks.recalibration --images 200 --repeats 1

``eager`` is the per-batch recipe of SWA's ``bn_update``: one eager call in training mode per batch,
each layer's momentum set so that its moving statistics become the running average of the batches
seen. ``traced`` is ``tlstudy.batchnorm.recalibrate_batchnorm``. Both run on the same model from the
same starting statistics, alternating within each repeat; the first traced call includes tracing and
is reported apart. The statistics of the two agree to float32 round-off, which the last line shows.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tlstudy.batchnorm import batchnorm_layers, recalibrate_batchnorm
from tlstudy.models import build_model


def eager_recalibration(model, x: np.ndarray, batch_size: int) -> None:
    layers = list(batchnorm_layers(model, trainable_only=True))
    saved = [layer.momentum for layer in layers]
    seen = 0
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        for layer in layers:  # moving = (seen * moving + len(batch) * batch_stat) / (seen + len(batch))
            layer.momentum = seen / (seen + len(batch))
        model(batch, training=True)
        seen += len(batch)
    for layer, momentum in zip(layers, saved):
        layer.momentum = momentum


def moving_statistics(model) -> list[np.ndarray]:
    return [v.numpy().copy() for layer in batchnorm_layers(model) for v in (layer.moving_mean, layer.moving_variance)]


def timed(recalibrate, model, x, batch_size, start: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    for layer_variable, value in zip((v for layer in batchnorm_layers(model)
                                      for v in (layer.moving_mean, layer.moving_variance)), start):
        layer_variable.assign(value)
    began = time.perf_counter()
    recalibrate(model, x, batch_size)
    return time.perf_counter() - began, moving_statistics(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="training images (default regime: 1,000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    x = np.random.default_rng(0).integers(0, 256, size=(args.images, 28, 28, 1), dtype=np.uint8)
    model = build_model("resnet50_scratch", x.shape[1:], 10, x.dtype, image_size=32)
    start = moving_statistics(model)
    first, _ = timed(recalibrate_batchnorm, model, x, args.batch_size, start)
    eager, traced = [], []
    for _ in range(args.repeats):
        seconds, eager_stats = timed(eager_recalibration, model, x, args.batch_size, start)
        eager.append(seconds)
        seconds, traced_stats = timed(recalibrate_batchnorm, model, x, args.batch_size, start)
        traced.append(seconds)
    print(f"ResNet50 at 32x32, {args.images} images in batches of {args.batch_size}, {args.repeats} repeats")
    print(f"eager:  median {statistics.median(eager):.1f} s ({min(eager):.1f}-{max(eager):.1f})")
    print(f"traced: median {statistics.median(traced):.1f} s ({min(traced):.1f}-{max(traced):.1f}); "
          f"first call, tracing included: {first:.1f} s")
    print(f"traced / eager: {statistics.median(traced) / statistics.median(eager):.2f}")
    worst = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(traced_stats, eager_stats))
    print(f"largest difference between the two's moving statistics, relative to each variable's largest "
          f"value: {worst:.1e}")


if __name__ == "__main__":
    main()
