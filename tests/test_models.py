import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import ROOT
from tlstudy.data import Arrays, Splits
from tlstudy.models import REGISTRY, build_model
from tlstudy.training import TrainConfig, train_model


def layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_mlp_is_the_studys():
    model = build_model("mlp", (28, 28), 10)
    assert layer_kinds(model) == ["Flatten", "Dropout", "Dense", "Dense"]
    assert model.count_params() == (784 * 512 + 512) + (512 * 10 + 10)
    assert isinstance(model.layers[2].kernel_initializer, keras.initializers.HeNormal)
    assert model.layers[1].rate == 0.5


def test_cnn_is_the_studys():
    model = build_model("cnn", (28, 28), 10)
    assert layer_kinds(model) == ["Reshape", "Conv2D", "MaxPooling2D", "Dropout", "Conv2D", "MaxPooling2D",
                                  "Dropout", "Flatten", "Dense", "Dropout", "Dense"]
    # 28 -conv-> 26 -pool-> 13 -conv-> 11 -pool-> 5: 5 * 5 * 64 = 1600 features into Dense 512.
    expected = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64) + (1600 * 512 + 512) + (512 * 10 + 10)
    assert model.count_params() == expected
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_uint8_images_are_scaled_inside_the_model(name):
    """Face-age images arrive as uint8 RGB: the model scales them, the same as float images / 255."""
    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    keras.utils.set_random_seed(0)
    as_uint8 = build_model(name, (16, 16, 3), 8, "uint8")
    as_float = build_model(name, (16, 16, 3), 8)
    as_float.set_weights(as_uint8.get_weights())
    assert layer_kinds(as_uint8)[0] == "Rescaling" and layer_kinds(as_float)[0] != "Rescaling"
    np.testing.assert_allclose(as_uint8.predict(x, verbose=0), as_float.predict(x / 255.0, verbose=0), atol=1e-6)


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="unknown model 'vgg'; known models: .*cnn.*mlp"):
        build_model("vgg", (28, 28), 10)
    assert {"mlp", "cnn", "resnet50_scratch", "resnet50_tl", "resnet50_ft"} <= set(REGISTRY)


def tiny_splits(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.random((n, 28, 28), dtype=np.float32) * 0.2
    for label in range(3):  # each class lights its own band of columns
        x[y == label, :, 9 * label: 9 * label + 9] += 0.8
    part = Arrays(x.astype(np.float32), y.astype(np.uint8))
    return Splits(train=part, val=part, test=part, class_names=["a", "b", "c"])


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_same_seed_same_weights_other_seed_other_weights(name):
    data = tiny_splits()
    config = TrainConfig(epochs=2, batch_size=16, learning_rate=1e-3)
    a, history = train_model(name, data, config, seed=1)
    b, _ = train_model(name, data, config, seed=1)
    c, _ = train_model(name, data, config, seed=2)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "epoch", "val_epoch"}
    assert len(history["loss"]) == 2


def test_training_learns_a_separable_task():
    data = tiny_splits(n=300)
    model, history = train_model("mlp", data, TrainConfig(epochs=15, batch_size=32, learning_rate=1e-2), seed=0)
    assert history["val_accuracy"][-1] > 0.9


@pytest.mark.parametrize("deterministic", [True, False])
def test_the_deterministic_switch_reaches_tensorflow(deterministic):
    """train.deterministic turns TensorFlow's deterministic kernels on, or leaves them off; a fresh process
    each, since once on they stay on."""
    code = ("from tensorflow.python.framework import config\n"
            "from tests.test_models import tiny_splits\n"
            "from tlstudy.training import TrainConfig, train_model\n"
            f"config_ = TrainConfig(epochs=1, batch_size=32, deterministic={deterministic})\n"
            "train_model('mlp', tiny_splits(), config_, seed=0)\n"
            "print(config.is_op_determinism_enabled())")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split()[-1] == str(deterministic)


def distributed_run(distribute: str, model: str, seed: int) -> tuple[int, float]:
    result = subprocess.run([sys.executable, "-m", "tests.distributed", distribute, model, str(seed)], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    replicas, accuracy = result.stdout.split()[-2:]
    return int(replicas), float(accuracy)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_mirrored_training_on_two_devices_matches_one_device(model):
    """train.distribute=mirrored on two logical CPU devices: two replicas, and test accuracy within 6
    points of the one-device run. Measured on noisy bands (seeds 0-2): differences -0.7, -4.0, -1.3
    points (MLP) and +2.3, -0.3, +2.0 (CNN), about the seed-to-seed spread; accuracy 0.76-0.82."""
    one_replica, alone = distributed_run("none", model, 1)
    replicas, mirrored = distributed_run("mirrored", model, 1)
    assert (one_replica, replicas) == (1, 2)
    assert alone > 0.6 and mirrored > 0.6, "well above chance (1/3)"
    assert abs(mirrored - alone) <= 0.06
