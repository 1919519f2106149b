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
from tlstudy.models import IMAGENET_WEIGHTS, ImagenetWeights, backbone_model, resnet50_backbone
from tlstudy.pretrain import MnistPretraining, WeightsError, pretrained_backbone
from tlstudy.training import seed_everything


def kernel(backbone):
    return backbone.get_layer("conv1_conv").kernel.numpy()


@pytest.fixture(scope="module")
def legacy_h5(tmp_path_factory):
    """A file in the layout of Keras' official ImageNet file (legacy HDF5), from a seeded random backbone."""
    seed_everything(5)
    backbone = resnet50_backbone(32)
    path = tmp_path_factory.mktemp("imagenet") / IMAGENET_WEIGHTS["ResNet50"].file
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)
    return path, kernel(backbone)


def test_imagenet_route_loads_the_local_file_after_checking_its_md5(legacy_h5, monkeypatch, tmp_path):
    path, expected = legacy_h5
    official = IMAGENET_WEIGHTS["ResNet50"]
    monkeypatch.setitem(IMAGENET_WEIGHTS, "ResNet50", ImagenetWeights(official.url, md5_of(path)))
    backbone, summary = pretrained_backbone("imagenet", 32, tmp_path, weights_file=str(path))
    np.testing.assert_array_equal(kernel(backbone), expected)
    assert summary == {"source": "imagenet", "backbone": "ResNet50", "weights_file": official.file,
                       "md5": md5_of(path)}


def test_imagenet_route_rejects_a_file_that_is_not_the_official_one(legacy_h5, tmp_path):
    with pytest.raises(WeightsError, match="is not that of Keras' official .*transfer.source: path"):
        pretrained_backbone("imagenet", 32, tmp_path, weights_file=str(legacy_h5[0]))


def test_imagenet_route_missing_file_and_failed_download(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match=r"does not exist\. Download https://storage.googleapis.com/.*notop.h5"):
        pretrained_backbone("imagenet", 32, tmp_path, weights_file=str(tmp_path / "nope.h5"))
    monkeypatch.setitem(IMAGENET_WEIGHTS, "ResNet50", ImagenetWeights("http://127.0.0.1:9/w.h5", "0" * 32))
    with pytest.raises(WeightsError, match="could not download the ImageNet weights.*set transfer.weights_file") as e:
        pretrain.imagenet_weights_file(None, cache_dir=tmp_path)
    assert "\n" not in str(e.value)
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
    with pytest.raises(WeightsError, match="does not fit ResNet50 without its top") as e:
        pretrained_backbone("path", 32, tmp_path, weights_file=str(wrong))
    assert "\n" not in str(e.value)
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


# Keras' official URLs and hashes, as read from keras/src/applications/*.py (no-top entries) when written.
OFFICIAL = {
    "ResNet50": ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                 "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "4d473c1dd8becc155b73f8504c6f6626"),
    "MobileNetV3Small": ("https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
                         "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "EfficientNetB0": ("https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
                       "50bc09e76180e00e4465e1a485ddc09d"),
}


def test_each_backbone_downloads_keras_own_file_with_its_published_hash(monkeypatch, tmp_path):
    """What keras.applications.<X>(include_top=False, weights="imagenet") would fetch: same URL, same MD5."""
    calls = []

    def get_file(fname, origin, file_hash, cache_subdir, cache_dir):
        calls.append((fname, origin, file_hash, cache_subdir))
        return str(tmp_path / fname)

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    for backbone, (url, md5) in OFFICIAL.items():
        path = pretrain.imagenet_weights_file(None, backbone)
        assert calls[-1] == (url.rsplit("/", 1)[-1], url, md5, "models") and path.name == calls[-1][0]
    assert set(IMAGENET_WEIGHTS) == set(OFFICIAL)


def legacy_file(backbone: str, path, seed: int = 3):
    """A weights file in the layout of Keras' official files (legacy HDF5), from a seeded random backbone."""
    seed_everything(seed)
    model = backbone_model(backbone, 32)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return model


def test_imagenet_route_for_a_small_backbone_right_and_wrong_files(monkeypatch, tmp_path):
    right = legacy_file("MobileNetV3Small", tmp_path / "mobilenet.h5")
    legacy_file("ResNet50", tmp_path / "resnet.h5")
    for name in ("mobilenet.h5", "resnet.h5"):  # each taken for the official file: the MD5 check passes
        official = ImagenetWeights("http://x/o.h5", md5_of(tmp_path / name))
        monkeypatch.setitem(IMAGENET_WEIGHTS, "MobileNetV3Small", official)
        if name == "resnet.h5":
            with pytest.raises(WeightsError) as e:
                pretrained_backbone("imagenet", 32, tmp_path, str(tmp_path / name), backbone="MobileNetV3Small")
        else:
            loaded, summary = pretrained_backbone("imagenet", 32, tmp_path, str(tmp_path / name),
                                                  backbone="MobileNetV3Small")
    for a, b in zip(loaded.get_weights(), right.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert summary["backbone"] == "MobileNetV3Small"
    message = str(e.value)
    assert "\n" not in message and len(message) < 400, message
    assert "does not fit MobileNetV3Small without its top" in message
    assert "Layer count mismatch" in message and "expected 86 layers, found 106 saved layers" in message


def test_efficientnet_official_file_normalises_as_imagenet_says(monkeypatch, tmp_path):
    """Keras' EfficientNet files keep ImageNet's standard deviations in the Normalization layer's variance
    slot (tensorflow/tensorflow#49930): loaded, the backbone must still compute (x / 255 - mean) / std."""
    model = backbone_model("EfficientNetB0", 32)
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    norm.adapt_mean.assign(mean)
    norm.adapt_variance.assign(std)  # as the official file has it
    path = tmp_path / "efficientnetb0_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    monkeypatch.setitem(IMAGENET_WEIGHTS, "EfficientNetB0", ImagenetWeights("http://x/" + path.name, md5_of(path)))
    loaded, _ = pretrained_backbone("imagenet", 32, tmp_path, str(path), backbone="EfficientNetB0")
    norm = next(layer for layer in loaded.layers if isinstance(layer, keras.layers.Normalization))
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    normalised = keras.Model(loaded.inputs, norm.output).predict(x, verbose=0)
    np.testing.assert_allclose(normalised, (x / 255 - mean) / std, rtol=1e-4, atol=1e-4)


def test_pretrain_stage_writes_a_small_backbone_for_every_pretrained_arm(tmp_path):
    """The stage reads models.<arm>.backbone: a MobileNetV3Small file through transfer.source: path."""
    weights = tmp_path / "mine.weights.h5"
    expected = legacy_file("MobileNetV3Small", tmp_path / "unused.h5", seed=11)
    expected.save_weights(weights)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["transfer"] = {"source": "path", "weights_file": str(weights)}
    for arm in ("resnet50_scratch", "resnet50_tl", "resnet50_ft", "resnet50_lp"):
        params["models"][arm]["backbone"] = "MobileNetV3Small"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, "-m", "stages.pretrain", "--out", "init", "--metrics", "pretrain.json"],
                            cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    for arm in ("resnet50_tl", "resnet50_ft", "resnet50_lp"):
        model = backbone_model("MobileNetV3Small", 32)
        model.load_weights(tmp_path / "init" / arm / "backbone.weights.h5")
        for a, b in zip(model.get_weights(), expected.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert yaml.safe_load((tmp_path / "pretrain.json").read_text())["backbone"] == "MobileNetV3Small"
