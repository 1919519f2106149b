"""Training throughput, side by side in one run: the project's training path (with deterministic
kernels, ``train.deterministic: true``, and without) against the original study's plain ``model.fit``
on in-memory arrays (TensorFlow's default kernels), and the frozen phase with cached features against
the frozen phase trained end to end.

    python -m benchmarks.throughput            # the models' table: 21 min on 2 CPU cores; then the rest
    python -m benchmarks.throughput --onednn-only   # TensorFlow's oneDNN kernels off against on
    python -m benchmarks.throughput --models resnet50_scratch   # one row of the table (9 min), then stop
    python -m benchmarks.throughput --quick    # a smoke run of the same code

Throughput counts training images per second from the median epoch after the first (the first pays
for graph tracing; the median shrugs off an epoch slowed by another job on a shared machine). Neither
path validates within the time it counts: plain ``model.fit`` gets no validation data, and the
project's path validates after its last epoch only, after the epoch's last batch, where the timer
stops (``benchmarks.timed_stage.EpochTimer``), so the table compares training with training; what
validation costs a real run is ``benchmarks.study``'s. Each path runs in a fresh process, the paths
alternating within each repeat; the table gives the best of ``--repeats`` per path and, as the
spread, the lowest and highest of the repeats' own ratios. Ratios above 1 favour the project's path.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import statistics
import subprocess
import sys
import time

import keras
import numpy as np

from benchmarks.timed_stage import EpochTimer
from tlstudy.data import Arrays, Splits
from tlstudy.models import BACKBONE, build_model
from tlstudy.training import (
    EpochCheckpoint,
    TrainConfig,
    ValidationBudget,
    compile_model,
    train_head_on_features,
    train_model,
)


def synthetic(n: int, n_val: int, seed: int = 0) -> Splits:
    rng = np.random.default_rng(seed)
    y = (np.arange(n + n_val) % 10).astype(np.uint8)
    x = rng.random((n + n_val, 28, 28), dtype=np.float32)
    return Splits(Arrays(x[:n], y[:n]), Arrays(x[n:], y[n:]), Arrays(x[n:], y[n:]), [str(i) for i in range(10)])


def steady_rate(timer: EpochTimer, n: int) -> float:
    return n / statistics.median(timer.times[1:])


def plain_fit(name: str, data: Splits, config: TrainConfig) -> float:
    """The original study's way: build, compile, model.fit on the arrays (here without validation data)."""
    model = build_model(name, data.train.x.shape[1:], 10, **config.model_options)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(data.train.x, data.train.y, batch_size=config.batch_size, epochs=config.epochs, verbose=0,
              callbacks=[timer])
    return steady_rate(timer, len(data.train))


def project_fit(name: str, data: Splits, config: TrainConfig) -> float:
    """The project's path: ``train_model`` with its seeds, validation budget and (``config.deterministic``)
    deterministic kernels."""
    timer = EpochTimer()
    train_model(name, data, config, seed=0, callbacks=[timer])
    return steady_rate(timer, len(data.train))


def frozen_phase(data: Splits, epochs: int, image_size: int) -> tuple[float, float]:
    """Seconds for ``epochs`` head-only epochs: cached features versus the frozen model end to end."""
    config = TrainConfig(epochs=epochs, batch_size=128, model_options={"image_size": image_size})
    times = []
    for cached in (True, False):
        model = build_model("resnet50_tl", data.train.x.shape[1:], 10, image_size=image_size)
        start = time.perf_counter()
        if cached:
            train_head_on_features(model, data, config, epochs, 0, EpochCheckpoint(None))
        else:
            model.get_layer(BACKBONE).trainable = False
            compile_model(model, config.learning_rate)
            model.fit(data.train.x, data.train.y, batch_size=128, epochs=epochs, verbose=0,
                      validation_data=(data.val.x, data.val.y))
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def measure(path: str, name: str, n: int, epochs: int) -> float:
    """One throughput measurement in this process (``--one``)."""
    data = synthetic(n, 256)
    config = TrainConfig(epochs=epochs, batch_size=128, deterministic=path != PROJECT_NONDETERMINISTIC,
                         model_options={"image_size": 32} if name.startswith("resnet50") else {},
                         validation=ValidationBudget(every=epochs))  # after the last epoch only
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' epoch lines would break the table
        return plain_fit(name, data, config) if path == "plain" else project_fit(name, data, config)


def measure_in_subprocess(path: str, name: str, n: int, epochs: int, onednn: str | None = None) -> float:
    """A fresh process per measurement: TensorFlow's determinism switch, which the project's path turns
    on, cannot be turned off again within a process, nor oneDNN (``onednn``: TF_ENABLE_ONEDNN_OPTS)."""
    command = [sys.executable, "-m", "benchmarks.throughput", "--one", path, name, str(n), str(epochs)]
    env = {**os.environ, **({"TF_ENABLE_ONEDNN_OPTS": onednn} if onednn is not None else {})}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return float(result.stdout.strip().splitlines()[-1])


PROJECT_NONDETERMINISTIC = "project-nondeterministic"
PATHS = ("plain", "project", PROJECT_NONDETERMINISTIC)


def alternating(runs: dict, repeats: int) -> dict[str, list[float]]:
    """Each of ``runs`` (a name -> a function returning img/s) ``repeats`` times, the runs alternating
    within each repeat, so that a machine slowing down or speeding up touches all of them alike."""
    rates = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            rates[key].append(run())
    return rates


def compare_paths(name: str, n: int, epochs: int, repeats: int) -> None:
    """One row: each path's best rate, the project's ratios to plain and their spread over the repeats."""
    rates = alternating({path: functools.partial(measure_in_subprocess, path, name, n, epochs) for path in PATHS},
                        repeats)
    best = {path: max(r) for path, r in rates.items()}
    cells = [f"{name:<18}{n:>7}{epochs:>7}{best['plain']:>10.1f}"]
    for path in PATHS[1:]:
        ratios = [p / q for p, q in zip(rates[path], rates["plain"])]
        cells.append(f"{best[path]:>10.1f}{best[path] / best['plain']:>7.2f}{min(ratios):>7.2f}-{max(ratios):.2f}")
    print("".join(cells), flush=True)
    print(f"{'':<18}runs, img/s: " + "; ".join(f"{path} {', '.join(f'{r:.1f}' for r in rates[path])}"
                                             for path in PATHS), flush=True)


def onednn_comparison(n: int, epochs: int, repeats: int) -> None:
    """ResNet50 at 32x32 through the project's path, oneDNN off against on, alternating fresh processes."""
    rates = alternating({setting: functools.partial(measure_in_subprocess, "project", "resnet50_scratch", n, epochs,
                                                    setting) for setting in ("0", "1")}, repeats)
    off, on = max(rates["0"]), max(rates["1"])
    print(f"\noneDNN, ResNet50 at 32x32, {n} images, {epochs} epochs, best of {repeats} (all runs: "
          f"off {', '.join(f'{r:.1f}' for r in rates['0'])}; on {', '.join(f'{r:.1f}' for r in rates['1'])})")
    print(f"{'oneDNN off img/s':>18}{'oneDNN on img/s':>18}{'ratio':>8}")
    print(f"{off:>18.1f}{on:>18.1f}{on / off:>8.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code, not the speed")
    parser.add_argument("--repeats", type=int, help="alternating runs of each path, the best counts (default: 3 for "
                        "the MLP and CNN, 2 for ResNet50 and the oneDNN comparison)")
    parser.add_argument("--onednn-only", action="store_true", help="only the oneDNN off/on comparison")
    parser.add_argument("--models", help="only these rows of the models' table, comma-separated, then stop")
    parser.add_argument("--one", nargs=4, metavar=("PATH", "MODEL", "N", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        path, name, n, epochs = args.one
        print(measure(path, name, int(n), int(epochs)))
        return
    scale = 0.05 if args.quick else 1.0
    if args.onednn_only:
        onednn_comparison(max(256, int(1024 * scale)), 3, args.repeats or 2)
        return
    sizes = {"mlp": (20000, 6, 3), "cnn": (8000, 5, 3), "resnet50_scratch": (512, 4, 2)}  # images, epochs, repeats
    if args.models:
        chosen = set(args.models.split(","))
        if chosen - set(sizes):
            parser.error(f"--models: {', '.join(sorted(chosen - set(sizes)))} not in the table; "
                         f"choose from {', '.join(sizes)}")
        sizes = {name: size for name, size in sizes.items() if name in chosen}

    print("img/s: the best of the repeats; ratio: to plain model.fit, best against best, then the range of the "
          "repeats' own ratios")
    print(f"{'':<39}{'project (deterministic)':<27}{'project, deterministic off':<27}")
    print(f"{'model':<18}{'images':>7}{'epochs':>7}{'plain':>10}" + f"{'img/s':>10}{'ratio':>7}{'spread':>10}" * 2,
          flush=True)
    for name, (n, epochs, repeats) in sizes.items():
        compare_paths(name, max(256, int(n * scale)), epochs if not args.quick else 3, args.repeats or repeats)
    if args.models:
        return

    n = max(256, int(1000 * scale))
    data = synthetic(n, max(256, int(1000 * scale)))
    print(f"\nfrozen phase, {n} training + {len(data.val)} validation images, ResNet50 at 32x32 (seconds)")
    print(f"{'head epochs':<14}{'cached features':>16}{'end to end':>12}{'speed-up':>10}", flush=True)
    for epochs in (1, 3, 10):
        with contextlib.redirect_stdout(io.StringIO()):
            cached, end_to_end = frozen_phase(data, epochs, 32)
        print(f"{epochs:<14}{cached:>16.1f}{end_to_end:>12.1f}{end_to_end / cached:>10.1f}", flush=True)
    onednn_comparison(max(256, int(1024 * scale)), 3, args.repeats or 2)


if __name__ == "__main__":
    main()
