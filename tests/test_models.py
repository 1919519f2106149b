import subprocess
import sys
from pathlib import Path

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
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "epoch", "val_epoch", "kept_epoch"}
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


def distributed_weights(distribute: str, model: str, out: Path) -> tuple[int, list[np.ndarray]]:
    result = subprocess.run([sys.executable, "-m", "tests.distributed", distribute, model, "1", str(out)], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    with np.load(out) as weights:
        return int(result.stdout.split()[-1]), [weights[k] for k in weights.files]


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_mirrored_training_on_two_devices_takes_the_same_steps_as_one_device(model, tmp_path):
    """train.distribute=mirrored on two logical CPU devices: two replicas, and the weights after four Adam
    steps (two epochs of two batches, no dropout) those of the one-device run. Adam's first steps move
    each weight by about the learning rate (1e-3) in the direction of its gradient's sign, so a replica
    that saw other images, or a batch split wrongly, moves many weights the other way; splitting a sum
    in two changes only its rounding, which can flip a gradient's sign only where the gradient is at the
    level of rounding noise. Measured: no weight differs by more than 1e-4 (largest: 6e-7 MLP, 8e-5
    CNN, of 0.4 and 0.8 million); the bound allows 0.1% of the weights to differ by more than a step."""
    one_replica, alone = distributed_weights("none", model, tmp_path / "one.npz")
    replicas, mirrored = distributed_weights("mirrored", model, tmp_path / "two.npz")
    assert (one_replica, replicas) == (1, 2)
    difference = np.concatenate([np.abs(a - b).ravel() for a, b in zip(alone, mirrored)])
    assert np.mean(difference > 1e-3) < 1e-3, f"{np.sum(difference > 1e-3)} weights took another step"
