"""BatchNorm recalibration of a ResNet50: eager forward passes against the traced function, side by side.

    python -m benchmarks.recalibration                 # 1,000 images at 32x32, 3 repeats; about 1 minute
    python -m benchmarks.recalibration --images 200 --repeats 1
    python -m benchmarks.recalibration --runs resnet50_scratch_s0 resnet50_ft_s4   # after make repro

``eager`` is the per-batch recipe of SWA's ``bn_update``: one eager call in training mode per batch,
each layer's momentum set so that its moving statistics become the running average of the batches
seen. ``traced`` is ``tlstudy.batchnorm.recalibrate_batchnorm``. Both run on the same model from the
same starting statistics, each called once untimed first (the traced call's tracing is reported),
then alternating, in turns, within each repeat. The statistics of the two agree to float32
round-off, which the last line shows.

With ``--runs``, the trained models of the workspace instead: each recalibrated on its own training
images both ways, as the evaluate stage does, and its 5,000 test predictions compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import yaml

from tlstudy.batchnorm import batchnorm_layers, recalibrate_batchnorm
from tlstudy.data import load_splits
from tlstudy.models import build_model
from tlstudy.training import seed_everything


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


def moving_variables(model) -> list:
    return [v for layer in batchnorm_layers(model) for v in (layer.moving_mean, layer.moving_variance)]


def moving_statistics(model) -> list[np.ndarray]:
    return [variable.numpy().copy() for variable in moving_variables(model)]


def timed(recalibrate, model, x, batch_size, start: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    for variable, value in zip(moving_variables(model), start):
        variable.assign(value)
    began = time.perf_counter()
    recalibrate(model, x, batch_size)
    return time.perf_counter() - began, moving_statistics(model)


def compare_timings(images: int, batch_size: int, repeats: int) -> None:
    x = np.random.default_rng(0).integers(0, 256, size=(images, 28, 28, 1), dtype=np.uint8)
    model = build_model("resnet50_scratch", x.shape[1:], 10, x.dtype, image_size=32)
    start = moving_statistics(model)
    first, _ = timed(recalibrate_batchnorm, model, x, batch_size, start)
    timed(eager_recalibration, model, x, batch_size, start)
    seconds = {"eager": [], "traced": []}
    ways = {"eager": eager_recalibration, "traced": recalibrate_batchnorm}
    stats = {}
    for repeat in range(repeats):
        for way in sorted(ways, reverse=bool(repeat % 2)):  # eager first, then traced first, ...
            elapsed, stats[way] = timed(ways[way], model, x, batch_size, start)
            seconds[way].append(elapsed)
    eager, traced = seconds["eager"], seconds["traced"]
    print(f"ResNet50 at 32x32, {images} images in batches of {batch_size}, {repeats} repeats")
    print(f"eager:  median {statistics.median(eager):.1f} s ({min(eager):.1f}-{max(eager):.1f})")
    print(f"traced: median {statistics.median(traced):.1f} s ({min(traced):.1f}-{max(traced):.1f}); "
          f"first call, tracing included: {first:.1f} s")
    print(f"traced / eager: {statistics.median(traced) / statistics.median(eager):.2f}")
    worst = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(stats["traced"], stats["eager"]))
    print(f"largest difference between the two's moving statistics, relative to each variable's largest "
          f"value: {worst:.1e}")


def compare_predictions(runs: list[str], batch_size: int) -> None:
    paths = yaml.safe_load(Path("dvc.yaml").read_text())["vars"][0]["paths"]  # where the stages read and write
    for run in runs:
        seed = int(run.rsplit("_s", 1)[1])
        seed_everything(seed)  # as the evaluate stage: deterministic kernels
        data = load_splits(Path(paths["processed"]), Path(paths["split"]), seed)
        predicted = {}
        for way, recalibrate in (("eager", eager_recalibration), ("traced", recalibrate_batchnorm)):
            model = keras.models.load_model(Path(paths["models"]) / f"{run}.keras", compile=False)
            recalibrate(model, data.train.x, batch_size)
            predicted[way] = model.predict(data.test.x, batch_size=512, verbose=0).argmax(axis=1)
        accuracy = {way: float(np.mean(labels == data.test.y)) for way, labels in predicted.items()}
        differing = int(np.sum(predicted["eager"] != predicted["traced"]))
        print(f"{run}: {differing} of {len(data.test.y)} test predictions differ; test accuracy "
              f"eager {accuracy['eager']:.4f}, traced {accuracy['traced']:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="training images (default regime: 1,000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", nargs="+", metavar="MODEL_sSEED",
                        help="compare the predictions of these trained runs (models/<run>.keras) instead")
    args = parser.parse_args()
    if args.runs:
        compare_predictions(args.runs, args.batch_size)
    else:
        compare_timings(args.images, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
