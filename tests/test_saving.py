"""What training leaves: a model file that loads as saved, the same bytes for the same weights, and a
log without error lines."""

import hashlib
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np

from tests.conftest import ROOT
from tlstudy.training import compile_model, save_model, seed_everything


def small_model():
    seed_everything(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                              keras.layers.Dense(2, activation="softmax")])
    compile_model(model, 1e-3)
    return model


def test_the_same_weights_saved_twice_give_the_same_bytes_and_load_as_saved(tmp_path):
    """Keras stamps the zip's entries and metadata.json with the time: two seconds apart (the zip's
    resolution), the files would differ, and dvc.lock with them, after a re-run that changed nothing."""
    model = small_model()
    save_model(model, tmp_path / "a.keras")
    time.sleep(2.1)
    save_model(model, tmp_path / "b.keras")
    a, b = ((tmp_path / name).read_bytes() for name in ("a.keras", "b.keras"))
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    loaded = keras.models.load_model(tmp_path / "a.keras")
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.optimizer.get_config()["learning_rate"] == model.optimizer.get_config()["learning_rate"]
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"


SAVE = """
import sys
import keras
from tlstudy.models import build_model
from tlstudy.training import compile_model, save_model
keras.utils.set_random_seed(0)
model = build_model("resnet50_scratch", (8, 8), 2, backbone="MobileNetV3Small")
compile_model(model, 1e-3)
save_model(model, sys.argv[1])
"""


def test_two_processes_save_the_same_model_to_the_same_bytes_and_it_loads(tmp_path):
    """Keras records objects that layers share (a dtype policy) by their address in the saving process:
    two processes would write different files for the same weights, and every re-run would change dvc.lock."""
    paths = [tmp_path / f"{name}.keras" for name in "ab"]
    for path in paths:
        subprocess.run([sys.executable, "-c", SAVE, str(path)], cwd=ROOT, check=True, capture_output=True)
    a, b = (path.read_bytes() for path in paths)
    assert b'"shared_object_id": 1' in zipfile.ZipFile(paths[0]).read("config.json")
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    loaded = keras.models.load_model(paths[0])
    assert loaded.count_params() > 0


SCRIPT = """
import numpy as np
from tlstudy.data import Arrays, Splits
from tlstudy.training import TrainConfig, ValidationBudget, predict, train_model
rng = np.random.default_rng(0)
part = lambda n: Arrays(rng.random((n, 8, 8), dtype=np.float32), (np.arange(n) % 2).astype(np.uint8))
data = Splits(part(600), part(600), part(600), ["a", "b"])
config = TrainConfig(epochs=2, batch_size=64, validation=ValidationBudget(None, 1))
model, _ = train_model("mlp", data, config, seed=0)
predict(model, data.test.x)
print("trained")
"""


def test_training_with_deterministic_kernels_logs_no_error_lines():
    """Keras' array adapter maps batches in parallel, and under deterministic kernels TensorFlow 2.21
    logs an E0000 line for that map; training, validation and prediction must not go through it."""
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "trained" in run.stdout, run.stderr[-2000:]
    assert "use_unbounded_threadpool" not in run.stderr
    assert not [line for line in run.stderr.splitlines() if line.startswith("E0000")]


def test_shared_objects_are_renumbered_in_order_of_appearance_each_keeping_its_own_number():
    """Two shared objects (addresses 140001 and 99) in a constructed config: each gets the number of its
    first appearance, so layers that shared one object still share it and never the other."""
    from tlstudy.training import _renumber_shared_objects

    config = {"layers": [{"dtype": {"shared_object_id": 140001}}, {"dtype": {"shared_object_id": 99}},
                         {"nested": [{"shared_object_id": 140001}]}], "name": "shared_object_id"}
    assert _renumber_shared_objects(config, {}) == {
        "layers": [{"dtype": {"shared_object_id": 1}}, {"dtype": {"shared_object_id": 2}},
                   {"nested": [{"shared_object_id": 1}]}], "name": "shared_object_id"}
