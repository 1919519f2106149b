"""The study benchmark's measurements, against processes whose cost is known."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks.study import run_stage
from benchmarks.timed_stage import breakdown, steady_epochs
from tests.conftest import ROOT


def test_a_stage_s_peak_memory_is_its_own_process_s_in_mib(tmp_path):
    allocate = f"{sys.executable} -c 'b = b\"x\" * (300 * 2**20)'"  # 300 MiB written
    seconds, peak = run_stage(allocate, tmp_path)
    assert 300 <= peak < 400, "300 MiB touched, plus the interpreter"
    _, idle = run_stage(f"{sys.executable} -c 'pass'", tmp_path)
    assert idle < 50, "another process's peak is not carried over"


def test_a_failing_stage_stops_the_benchmark_with_its_error(tmp_path):
    with pytest.raises(SystemExit, match="ZeroDivisionError"):
        run_stage(f"{sys.executable} -c '1 / 0'", tmp_path)


def test_the_train_stage_breakdown_adds_up_to_its_wall_time():
    # One fit: 10 s before it, four epochs (the first traces the graph), two validations, 10 s after.
    timings = {"fits": [{"start": 10.0, "end": 60.0, "epochs": [20.0, 5.0, 6.0, 4.0]}],
               "validation": [3.0, 3.0], "recalibration": [2.0, 2.0], "total": 70.0}
    parts = dict(breakdown(timings))
    assert list(parts.values()) == [10.0, 20.0, 15.0, 6.0, 9.0, 10.0]  # steady: 4 epochs x median 5 s
    assert "recalibration 4.0 s" in list(parts)[3]
    # The transfer arm's two fits: a one-epoch head fit counts whole, the fine-tuning at its median.
    two = {"fits": [{"start": 5.0, "end": 9.0, "epochs": [3.0]}, {"start": 9.5, "end": 30.0, "epochs": [10, 4, 5]}],
           "validation": [], "recalibration": [], "total": 31.0}
    assert steady_epochs(two) == 3.0 + 3 * 4.5
    # Tracing: 22 s of epochs less 16.5 steady; inside the fits: 24.5 s less 22 of epochs; after: 31 - 5 - 24.5.
    assert [seconds for _, seconds in breakdown(two)] == pytest.approx([5.0, 16.5, 5.5, 0.0, 2.5, 1.5])


# A fit whose time is known exactly: the clock the timer reads (time.perf_counter) moves only when the
# script says so, 0.2 s per batch and 1 s after each epoch; the real work (tracing, validation) takes no
# time on it, so the figures do not depend on how loaded the machine is.
SLOW_FIT = """
import time
import keras
import numpy as np
from tlstudy.data import Arrays
from tlstudy.training import BudgetedValidation

now = [time.perf_counter()]
time.perf_counter = lambda: now[0]

def advance(seconds):
    now[0] += seconds

class Slow(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        advance(0.2)

    def on_epoch_end(self, epoch, logs=None):  # not training: an epoch's time leaves it out
        advance(1.0)

model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(),
                          keras.layers.Dense(2, activation="softmax")])
model.compile("sgd", "sparse_categorical_crossentropy")
x, y = np.ones((8, 4), np.float32), np.zeros(8, np.uint8)
validation = BudgetedValidation(x, Arrays(x, y), batch_size=4, every=2, last_epoch=3)
model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[validation, Slow()])
advance(1.0)
"""


def test_timed_stage_times_a_real_fit_s_epochs_and_validations(tmp_path):
    (tmp_path / "slow_fit.py").write_text(SLOW_FIT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "benchmarks.timed_stage", "timings.json", "slow_fit"], cwd=tmp_path,
                   env=env, check=True)
    timings = json.loads((tmp_path / "timings.json").read_text())
    [fit] = timings["fits"]
    # Two batches of 0.2 s each, and not the 1 s after each epoch.
    assert fit["epochs"] == pytest.approx([0.4, 0.4, 0.4]), fit["epochs"]
    assert len(timings["validation"]) == len(timings["recalibration"]) == 2, "after epochs 2 and 3"
    assert fit["end"] - fit["start"] == pytest.approx(3 * 1.4), "three epochs and what follows each, in fit"
    assert timings["total"] - fit["end"] == pytest.approx(1.0), "the second after fit"
