"""Run a stage's module as ``python -m <module>`` would, and write where its time went.

    python -m benchmarks.timed_stage TIMINGS.json stages.train --model resnet50_scratch --seed 0 ...

``benchmarks.study`` runs the train stage this way: the stage is unchanged, and the timings come from
the same run whose wall time and memory it reports. Hooks, each a few microseconds per call:

- every ``keras.Model.fit``: its start and end, and each epoch's batches (from the epoch's start to
  its last batch: training alone, before any end-of-epoch callback);
- ``tlstudy.training.BudgetedValidation.on_epoch_end``: each validation, BatchNorm recalibration
  (``recalibrate_batchnorm``) counted apart.

All times are seconds since this process started.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import json  # noqa: E402  (START first: the stage's imports count as the stage's)
import runpy  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402  (after tlstudy: the benchmarks package imports it first, for oneDNN)


def since_start() -> float:
    return time.perf_counter() - START


class EpochTimer(keras.callbacks.Callback):
    """Each epoch's batches, from the epoch's start to its last batch: training alone, without the
    end-of-epoch callbacks (validation, checkpoints), whatever order the callbacks run in."""

    def __init__(self, times: list | None = None):
        super().__init__()
        self.times = [] if times is None else times

    def on_epoch_begin(self, epoch, logs=None):
        self.begin = self.last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(self.last - self.begin)


def install(timings: dict) -> None:
    import tlstudy.training as training

    fit = keras.Model.fit

    def timed_fit(self, *args, callbacks=None, **kwargs):
        record = {"start": since_start(), "epochs": []}
        timings["fits"].append(record)
        try:
            return fit(self, *args, callbacks=[*(callbacks or []), EpochTimer(record["epochs"])], **kwargs)
        finally:
            record["end"] = since_start()

    def timed(function, key):
        def wrapper(*args, **kwargs):
            begin = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                timings[key].append(time.perf_counter() - begin)
        return wrapper

    validate = training.BudgetedValidation.on_epoch_end

    def timed_validation(self, epoch, logs=None):
        scored = len(self.scored)
        begin = time.perf_counter()
        validate(self, epoch, logs)
        if len(self.scored) > scored:  # it validated at this epoch
            timings["validation"].append(time.perf_counter() - begin)

    keras.Model.fit = timed_fit
    training.recalibrate_batchnorm = timed(training.recalibrate_batchnorm, "recalibration")
    training.BudgetedValidation.on_epoch_end = timed_validation


def breakdown(timings: dict) -> list[tuple[str, float]]:
    """The stage's wall time in parts that add up to it (seconds)."""
    fits = timings["fits"]
    if not fits:
        return [("no model.fit in this stage", timings["total"])]
    epochs = [e for fit in fits for e in fit["epochs"]]
    steady = steady_epochs(timings)
    in_fits = sum(fit["end"] - fit["start"] for fit in fits)
    validation, recalibration = sum(timings["validation"]), sum(timings["recalibration"])
    return [
        ("before the first fit: imports, arrays, model build (transfer arms: cached features)", fits[0]["start"]),
        ("training at the steady epoch rate", steady),
        ("first epochs beyond that: graph tracing", sum(epochs) - steady),
        (f"validation ({len(timings['validation'])}x; BatchNorm recalibration {recalibration:.1f} s of it)",
         validation),
        ("other work inside fit (callbacks, checkpoints)", in_fits - sum(epochs) - validation),
        ("outside fits after the first: curves, saving (transfer arms: the switch to fine-tuning)",
         timings["total"] - fits[0]["start"] - in_fits),
    ]


def steady_epochs(timings: dict) -> float:
    """Each fit's epochs at its steady rate (its median epoch after the first; a one-epoch fit: that
    epoch): the pure training compute of the stage."""
    total = 0.0
    for fit in timings["fits"]:
        epochs = fit["epochs"]
        total += len(epochs) * statistics.median(epochs[1:]) if len(epochs) > 1 else sum(epochs)
    return total


def main() -> None:
    out, module, *argv = sys.argv[1:]
    timings = {"fits": [], "validation": [], "recalibration": []}
    install(timings)
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        timings["total"] = since_start()
        Path(out).write_text(json.dumps(timings))


if __name__ == "__main__":
    main()
