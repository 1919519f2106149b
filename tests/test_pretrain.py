"""Where the transfer arm's backbone comes from: MNIST, ImageNet's official file, or any weights file."""

import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
import yaml
from keras.src.legacy.saving import legacy_h5_format

from tests.conftest import ROOT
from tlstudy import pretrain
from tlstudy.idx import md5_of
from tlstudy.models import resnet50_backbone
from tlstudy.pretrain import MnistPretraining, WeightsError, pretrained_backbone
from tlstudy.training import seed_everything


def kernel(backbone):
    return backbone.get_layer("conv1_conv").kernel.numpy()


@pytest.fixture(scope="module")
def legacy_h5(tmp_path_factory):
    """A file in the layout of Keras' official ImageNet file (legacy HDF5), from a seeded random backbone."""
    seed_everything(5)
    backbone = resnet50_backbone(32)
    path = tmp_path_factory.mktemp("imagenet") / pretrain.IMAGENET_FILE
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)
    return path, kernel(backbone)


def test_imagenet_route_loads_the_local_file_after_checking_its_md5(legacy_h5, monkeypatch, tmp_path):
    path, expected = legacy_h5
    monkeypatch.setattr(pretrain, "IMAGENET_MD5", md5_of(path))
    backbone, summary = pretrained_backbone("imagenet", 32, tmp_path, weights_file=str(path))
    np.testing.assert_array_equal(kernel(backbone), expected)
    assert summary == {"source": "imagenet", "weights_file": pretrain.IMAGENET_FILE}


def test_imagenet_route_rejects_a_file_that_is_not_the_official_one(legacy_h5, tmp_path):
    with pytest.raises(WeightsError, match="is not that of Keras' official .*transfer.source: path"):
        pretrained_backbone("imagenet", 32, tmp_path, weights_file=str(legacy_h5[0]))


def test_imagenet_route_missing_file_and_failed_download(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match=r"does not exist\. Download https://storage.googleapis.com/.*notop.h5"):
        pretrained_backbone("imagenet", 32, tmp_path, weights_file=str(tmp_path / "nope.h5"))
    monkeypatch.setattr(pretrain, "IMAGENET_URL", "http://127.0.0.1:9/weights.h5")
    with pytest.raises(WeightsError, match="could not download the ImageNet weights.*set transfer.weights_file"):
        pretrain.imagenet_weights_file(None, cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.h5")), "a failed download leaves no file behind"


def test_path_route_loads_any_fitting_weights_file(legacy_h5, tmp_path):
    backbone, _ = pretrained_backbone("path", 32, tmp_path, weights_file=str(legacy_h5[0]))
    np.testing.assert_array_equal(kernel(backbone), legacy_h5[1])
    saved = tmp_path / "mine.weights.h5"
    backbone.save_weights(saved)
    again, _ = pretrained_backbone("path", 32, tmp_path, weights_file=str(saved))
    np.testing.assert_array_equal(kernel(again), legacy_h5[1])


def test_path_route_errors(tmp_path):
    wrong = tmp_path / "mlp.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(wrong)
    with pytest.raises(WeightsError, match="does not fit ResNet50 without its top"):
        pretrained_backbone("path", 32, tmp_path, weights_file=str(wrong))
    with pytest.raises(WeightsError, match="transfer.weights_file is null"):
        pretrained_backbone("path", 32, tmp_path)
    with pytest.raises(WeightsError, match="transfer.source must be one of mnist, imagenet, path, got 'vgg'"):
        pretrained_backbone("vgg", 32, tmp_path)


def test_mnist_pretraining_on_a_tiny_subset(tmp_path):
    config = MnistPretraining(examples_per_class=3, epochs=1, batch_size=16, val_size=50)
    backbone, summary = pretrained_backbone("mnist", 32, tmp_path, mnist=config)
    assert summary["train_images"] == 30 and summary["epochs"] == 1
    assert 0.0 <= summary["mnist_val_accuracy"] <= 1.0
    seed_everything(config.seed)
    assert not np.allclose(kernel(backbone), kernel(resnet50_backbone(32))), "training changed the weights"


def test_pretrain_stage_fails_cleanly_without_the_weights_file(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["transfer"] = {"source": "imagenet", "weights_file": str(tmp_path / "missing.h5")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, "-m", "stages.pretrain", "--out", "models/init", "--metrics",
                             "metrics/pretrain.json"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "missing.h5 does not exist. Download" in errors[0]
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
