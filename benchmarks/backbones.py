"""Training throughput of each backbone at two image sizes on this machine, side by side in one run.

    python -m benchmarks.backbones                     # 3 backbones x 32 and 96 px, 256 images, 2 epochs
    python -m benchmarks.backbones --sizes 32 128 --images 512 --epochs 3
    python -m benchmarks.backbones --xla               # ResNet50 at 32 px, XLA off against on

Each cell trains the scratch arm (``train_model``, every weight trainable, the default regime's
deterministic kernels, float32) on synthetic 28x28 grayscale images resized inside the model, as
Fashion-MNIST's are, each cell in a fresh process. Images/s is the last epoch's (the first pays for
graph tracing). Runs per hour prices one run of the default regime (``examples_per_class`` x 10
classes x ``epochs`` from params.yaml) at that rate, plus the first epoch's extra time (tracing),
training alone: validation, recalibration and evaluation are ``benchmarks.study``'s to measure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import yaml

BACKBONES = ("ResNet50", "MobileNetV3Small", "EfficientNetB0")


def cell(backbone: str, size: int, images: int, epochs: int, jit_compile: bool | str, deterministic: bool) -> None:
    """One measurement, printed as ``RESULT <seconds of each epoch>``."""
    import numpy as np

    from benchmarks.timed_stage import EpochTimer
    from tlstudy.data import Arrays, Splits
    from tlstudy.training import TrainConfig, ValidationBudget, train_model

    rng = np.random.default_rng(0)
    y = (np.arange(images) % 10).astype(np.uint8)
    part = Arrays(rng.random((images, 28, 28), dtype=np.float32), y)
    data = Splits(part, Arrays(part.x[:10], part.y[:10]), part, [str(i) for i in range(10)])
    config = TrainConfig(epochs=epochs, batch_size=128, model_options={"image_size": size, "backbone": backbone},
                         validation=ValidationBudget(examples_per_class=1, every=epochs), jit_compile=jit_compile,
                         deterministic=deterministic)
    timer = EpochTimer()
    train_model("resnet50_scratch", data, config, seed=0, callbacks=[timer])
    print("RESULT", *timer.times)


def measure(backbone: str, size: int, images: int, epochs: int, jit_compile="auto", deterministic=True) -> list[float]:
    command = [sys.executable, "-m", "benchmarks.backbones", "--cell", backbone, str(size), str(images), str(epochs),
               str(jit_compile), str(deterministic)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
    return [float(t) for t in line.split()[1:]]


def parse(value: str):
    return {"True": True, "False": False}.get(value, value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 96])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--images", type=int, default=256, help="training images per cell")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per cell (the last is timed)")
    parser.add_argument("--xla", action="store_true", help="ResNet50 at the first size: XLA off against on, "
                        "deterministic kernels off (Keras turns XLA off under them)")
    parser.add_argument("--repeats", type=int, default=1, help="--xla: alternating pairs of runs")
    parser.add_argument("--cell", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        backbone, size, images, epochs, jit, deterministic = args.cell
        cell(backbone, int(size), int(images), int(epochs), parse(jit), parse(deterministic))
        return 0

    params = yaml.safe_load(open("params.yaml"))
    run_images = int(params["examples_per_class"]) * 10 * int(params["epochs"])
    if args.xla:
        size = args.sizes[0]
        print(f"ResNet50 at {size} px, {args.images} images, batch 128, deterministic kernels off, last epoch of "
              f"{args.epochs}; off and on alternate")
        rates = {}
        for _ in range(args.repeats):
            for jit in (False, True):
                times = measure("ResNet50", size, args.images, args.epochs, jit, False)
                rates.setdefault(jit, []).append(args.images / times[-1])
                print(f"  jit_compile={jit}: {rates[jit][-1]:.0f} images/s (first epoch {times[0]:.1f} s)", flush=True)
        print(f"XLA on / off, best of each: {max(rates[True]) / max(rates[False]):.2f}")
        return 0

    print(f"Scratch arm, {args.images} synthetic images, batch 128, last of {args.epochs} epochs; runs/hour: "
          f"{run_images:,} training images (params.yaml) plus tracing, training only")
    header = "| backbone | " + " | ".join(f"{s} px images/s | {s} px runs/hour" for s in args.sizes) + " |"
    rows = []
    for backbone in args.backbones:
        cells = []
        for size in args.sizes:
            times = measure(backbone, size, args.images, args.epochs)
            rate = args.images / times[-1]
            tracing = max(0.0, times[0] - times[-1])
            cells += [f"{rate:.0f}", f"{3600 / (run_images / rate + tracing):.1f}"]
            print(f"  {backbone} {size} px: {rate:.0f} images/s, first epoch {times[0]:.1f} s", flush=True)
        rows.append(f"| {backbone} | " + " | ".join(cells) + " |")
    print(header)
    print("|---|" + "---:|" * (2 * len(args.sizes)))
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
