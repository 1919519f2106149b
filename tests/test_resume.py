"""A killed run goes on from its last epoch, to the model an uninterrupted run makes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.test_models import tiny_splits
from tests.test_pipeline import make_repo, project_env, run
from tlstudy.training import Resume, TrainConfig, train_model

ROOT = Path(__file__).resolve().parents[1]

CONFIG = TrainConfig(epochs=5, batch_size=16, learning_rate=1e-3)


class Interrupt(keras.callbacks.Callback):
    """Stands for a kill right after an epoch's checkpoint."""

    def __init__(self, after: int):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt


class Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


def assert_same_model(a: keras.Model, b: keras.Model, what: str = "variables") -> None:
    """Every variable (random-generator states included), or with ``what="weights"`` the weights
    only (a loaded model's generators are seeded afresh)."""
    for x, y in zip(getattr(a, what), getattr(b, what), strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """The MLP has dropout and shuffles every epoch: both must continue where they were. (Keras'
    own BackupAndRestore with fit's shuffle=True gave other weights here.)"""
    data = tiny_splits(n=90)
    uninterrupted, expected = train_model("mlp", data, CONFIG, seed=3)
    resume = Resume(tmp_path / "run", "these inputs")
    with pytest.raises(KeyboardInterrupt):
        train_model("mlp", data, CONFIG, seed=3, callbacks=[Interrupt(after=2)], resume=resume)
    saved = json.loads((tmp_path / "run/model/state.json").read_text())
    assert saved["history"]["epoch"] == [0, 1]

    epochs = Epochs()
    resumed, history = train_model("mlp", data, CONFIG, seed=3, callbacks=[epochs], resume=resume)
    assert epochs.seen == [2, 3, 4], "the epochs after the checkpoint, and only those"
    assert history == expected
    assert_same_model(resumed, uninterrupted)


def test_a_checkpoint_of_other_inputs_is_discarded(tmp_path):
    data = tiny_splits(n=90)
    with pytest.raises(KeyboardInterrupt):
        train_model("mlp", data, CONFIG, seed=3, callbacks=[Interrupt(after=2)],
                    resume=Resume(tmp_path / "run", "learning rate 0.01"))
    epochs = Epochs()
    _, history = train_model("mlp", data, CONFIG, seed=3, callbacks=[epochs],
                             resume=Resume(tmp_path / "run", "learning rate 0.001"))
    assert epochs.seen == [0, 1, 2, 3, 4] and history["epoch"] == [0, 1, 2, 3, 4]


PLUMBING = {"train.models": ["mlp"], "hypothesis.comparisons": {}, "examples_per_class": 1000, "epochs": 8}


@pytest.mark.slow
def test_dvc_repro_after_a_sigkill_resumes_and_matches_an_uninterrupted_run(tmp_path):
    """The real stage under `dvc repro`, killed (SIGKILL, the whole process group) once it has
    checkpointed two epochs; the next `dvc repro` resumes, and model and curves equal a run that
    was never killed."""
    repo = make_repo(tmp_path, PLUMBING)
    run(repo, sys.executable, "-m", "dvc", "repro", "train@mlp-0")
    expected = {name: (repo / name).read_bytes() for name in
                ("dvclive/mlp_s0/metrics.json", "dvclive/mlp_s0/plots/metrics/train/loss.tsv",
                 "dvclive/mlp_s0/plots/metrics/eval/accuracy.tsv")}
    uninterrupted = keras.models.load_model(repo / "models/mlp_s0.keras")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "uninterrupted run")

    state = repo / "models/.resume/mlp_s0/model/state.json"
    process = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "train@mlp-0"],
                               cwd=repo, env=project_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while not (state.exists() and len(json.loads(state.read_text())["history"]["epoch"]) >= 2):
        assert process.poll() is None, "the run ended before it could be killed: more epochs or images"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = json.loads(state.read_text())["history"]["epoch"]
    assert len(done) < PLUMBING["epochs"], "killed midway"
    untracked = run(repo, "git", "status", "--porcelain", "--untracked-files=all")
    assert "??" not in untracked, f"a killed run leaves nothing git would pick up:\n{untracked}"

    log = run(repo, sys.executable, "-m", "dvc", "repro", "train@mlp-0")
    assert f"resuming at epoch {done[-1] + 2}" in log
    assert not (repo / "models/.resume/mlp_s0").exists(), "a completed run removes its checkpoints"
    for name, content in expected.items():
        assert (repo / name).read_bytes() == content, name
    assert_same_model(keras.models.load_model(repo / "models/mlp_s0.keras"), uninterrupted, "weights")
    shutil.rmtree(repo / "data", ignore_errors=True)  # the processed copy of Fashion-MNIST, 220 MB


def test_every_epoch_has_its_own_order_and_a_resumed_run_sees_the_same_batches():
    """Each epoch is a permutation of the training images in an order of its own (one order for
    every epoch would repeat the same batches), and epochs 2-4 of a run resumed at epoch 2 are
    those of the run from epoch 0."""
    from tlstudy.data import Arrays
    from tlstudy.training import epoch_batches

    n, batch = 20, 8
    train = Arrays(np.arange(n, dtype=np.float32)[:, None], np.arange(n) % 2)
    def orders(first_epoch):
        flat = np.concatenate([x.numpy()[:, 0] for x, _ in epoch_batches(train, batch, 3, first_epoch, 5)])
        return flat.astype(int).reshape(5 - first_epoch, n)
    full = orders(0)
    for order in full:
        assert sorted(order) == list(range(n)), "each epoch sees every image once"
    assert len({tuple(order) for order in full}) == 5, "each epoch in its own order"
    np.testing.assert_array_equal(orders(2), full[2:])
    labels = np.concatenate([y.numpy() for _, y in epoch_batches(train, batch, 3, 0, 1)])
    np.testing.assert_array_equal(labels, full[0] % 2)  # labels travel with their images


def test_the_resume_fingerprint_covers_the_train_stage_code_only():
    """Editing the report's module keeps an interrupted run's checkpoints; editing training's does not."""
    out = subprocess.run([sys.executable, "-c", "import stages.train as t; print(*t.code_files(), sep='\\n')"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    names = {str(Path(p).relative_to(ROOT)) for p in out}
    assert {"stages/train.py", "tlstudy/training.py", "tlstudy/models.py", "tlstudy/batchnorm.py"} <= names
    assert not names & {"tlstudy/report.py", "tlstudy/stats.py", "tlstudy/sweep.py", "stages/report.py"}
