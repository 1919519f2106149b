"""A registry of model builders: a name maps to a function that returns an uncompiled Keras model.

A new model is one builder decorated with ``@register("name")``. Every builder takes the input
shape, the number of classes, the input dtype and its own keyword options from ``params.yaml``'s
``models.<name>``. Images arrive as float32 in [0, 1] (Fashion-MNIST) or as uint8 (face-age, stored
small for fast epochs); ``input_layers`` scales the latter inside the model, so any later use of a
saved model takes the same images as training did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
from keras import layers

from tlstudy.config import BACKBONES, DEFAULT_BACKBONE

Builder = Callable[..., keras.Model]


@dataclass(frozen=True)
class ModelSpec:
    builder: Builder
    pretrained: bool = False  # starts from the pretrain stage's backbone instead of random weights


REGISTRY: dict[str, ModelSpec] = {}

# Layer names the transfer schedule relies on.
BACKBONE = "backbone"
FEATURES = "features"
HEAD = "head"
# The pretrain stage's file for a pretrained model's backbone, in models/init/<model>/.
BACKBONE_FILE = "backbone.weights.h5"


def register(name: str, pretrained: bool = False) -> Callable[[Builder], Builder]:
    def decorator(fn: Builder) -> Builder:
        if name in REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        REGISTRY[name] = ModelSpec(fn, pretrained)
        return fn

    return decorator


def model_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}. "
                         "Fix train.models in params.yaml") from None


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, input_dtype="float32",
                **options) -> keras.Model:
    return model_spec(name).builder(input_shape, num_classes, input_dtype=input_dtype, **options)


def input_layers(input_shape, input_dtype) -> list:
    """The input, and for uint8 images their scaling to [0, 1]."""
    scaling = [layers.Rescaling(1.0 / 255)] if np.dtype(input_dtype) == np.uint8 else []
    return [keras.Input(input_shape, dtype=input_dtype), *scaling]


@keras.saving.register_keras_serializable(package="tlstudy")
class RgbToBgr(layers.Layer):
    """Reverse the channel axis: RGB images in, the BGR order of Keras' ImageNet ResNet50 weights out."""

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=-1)


@register("mlp")
def mlp(input_shape, num_classes, input_dtype="float32", dropout: float = 0.5, units: int = 512) -> keras.Model:
    """The original study's MLP: Flatten, Dropout 0.5, Dense 512 ReLU (He normal), softmax."""
    return keras.Sequential(
        [
            *input_layers(input_shape, input_dtype),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(units, activation="relu", kernel_initializer="he_normal"),
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="mlp",
    )


@register("cnn")
def cnn(input_shape, num_classes, input_dtype="float32", dropout: float = 0.5, units: int = 512) -> keras.Model:
    """The original study's two-convolution CNN."""
    if len(input_shape) == 2:  # grayscale images without a channel axis
        reshape = [layers.Reshape((*input_shape, 1))]
    else:
        reshape = []
    return keras.Sequential(
        [
            *input_layers(input_shape, input_dtype),
            *reshape,
            layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_normal"),
            layers.MaxPooling2D(2),
            layers.Dropout(dropout),
            layers.Conv2D(64, 3, activation="relu", kernel_initializer="he_normal"),
            layers.MaxPooling2D(2),
            layers.Dropout(dropout),
            layers.Flatten(),
            layers.Dense(units, activation="relu", kernel_initializer="he_normal"),
            layers.Dropout(dropout),
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="cnn",
    )


# ImageNet's per-channel means on the 0-255 scale, in the BGR order Keras' ResNet50 weights expect
# (keras.applications.resnet50.preprocess_input, "caffe" mode).
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class ImagenetWeights:
    """Keras' official ImageNet weights of an application without its top: the URL and MD5 that
    ``keras.applications`` itself downloads and checks (its ``WEIGHTS_HASHES``, no-top entry)."""

    url: str
    md5: str

    @property
    def file(self) -> str:
        return self.url.rsplit("/", 1)[-1]


# Keras 3.15's keras/src/applications/{resnet,mobilenet_v3,efficientnet}.py, include_top=False.
IMAGENET_WEIGHTS = {
    "ResNet50": ImagenetWeights("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                                "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                                "4d473c1dd8becc155b73f8504c6f6626"),
    "MobileNetV3Small": ImagenetWeights("https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
                                        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
                                        "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "EfficientNetB0": ImagenetWeights("https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
                                      "50bc09e76180e00e4465e1a485ddc09d"),
}


def check_backbone(backbone: str, image_size: int) -> None:
    if backbone not in BACKBONES:
        raise ValueError(f"models.<resnet>.backbone is {backbone!r}; use one of {', '.join(BACKBONES)}")
    minimum = BACKBONES[backbone][0]
    if image_size < minimum:
        raise ValueError(f"models.<resnet>.image_size must be at least {minimum} (Keras' {backbone} minimum), "
                         f"got {image_size}")


def backbone_model(backbone: str, image_size: int) -> keras.Model:
    """A Keras application without its top, randomly initialised; pretrained weights are loaded afterwards.

    ResNet50 takes inputs already normalised ("caffe": BGR, ImageNet's means subtracted), as its
    ``preprocess_input`` would; MobileNetV3 and EfficientNet normalise RGB images of 0-255 inside the
    application (their ``preprocess_input`` passes images through)."""
    check_backbone(backbone, image_size)
    model = getattr(keras.applications, backbone)(include_top=False, weights=None,
                                                  input_shape=(image_size, image_size, 3))
    model.name = BACKBONE
    return model


def resnet50_backbone(image_size: int) -> keras.Model:
    """Keras' ResNet50 without its top, randomly initialised."""
    return backbone_model("ResNet50", image_size)


def stage_of(backbone: str, layer: str) -> int:
    """The stage a backbone layer belongs to, numbered as ``fine_tune`` names stages (``conv3``,
    ``block3``: 3): ResNet50's conv1 and pool1 layers are stage 1, EfficientNet's stem 0 and its top
    (above block7) 8. MobileNetV3's layer names carry no stage: all its layers are 0."""
    if backbone == "ResNet50":
        return int(layer[4]) if layer.startswith("conv") else 1
    if backbone == "EfficientNetB0":
        return int(layer[5]) if layer.startswith("block") else 8 if layer.startswith("top") else 0
    return 0


def first_stage(backbone: str, fine_tune: str) -> int:
    """The stage ``fine_tune`` unfreezes from: 0 (everything) for ``all``; a clear error for a stage
    the backbone does not have."""
    choices = ("all", *BACKBONES[backbone][1])
    if fine_tune not in choices:
        why = "" if len(choices) > 1 else f" ({backbone} has no named stages to unfreeze from)"
        raise ValueError(f"fine_tune must be one of {', '.join(choices)}, got {fine_tune!r}{why}")
    return 0 if fine_tune == "all" else int(fine_tune[-1])


def resnet50(input_shape, num_classes, input_dtype="float32", image_size: int = 32,
             backbone: str = DEFAULT_BACKBONE) -> keras.Model:
    """A Keras application without top (ResNet50 unless ``backbone`` says otherwise), global average
    pooling, softmax head.

    Images are resized to ``image_size`` and grayscale is repeated to three channels, and the input is
    brought to what the application's ImageNet weights expect, all inside the model, so training,
    evaluation and any later use share one path: for ResNet50, RGB turned into BGR and centred by
    ImageNet's means; for the others, RGB on the 0-255 scale (they normalise inside). The head
    computes in float32 whatever the precision policy, so softmax and losses keep their accuracy.
    """
    check_backbone(backbone, image_size)
    caffe = backbone == "ResNet50"
    inputs, *scaling = input_layers(input_shape, input_dtype)
    x = scaling[0](inputs) if scaling else inputs
    x = layers.Reshape((*input_shape, 1))(x) if len(input_shape) == 2 else x
    x = layers.Resizing(image_size, image_size)(x)
    if x.shape[-1] == 1:
        x = layers.Concatenate()([x, x, x])
    elif caffe:
        x = RgbToBgr()(x)
    x = layers.Rescaling(255.0)(x)
    if caffe:
        x = layers.Normalization(mean=IMAGENET_BGR_MEAN, variance=(1.0, 1.0, 1.0))(x)
    x = backbone_model(backbone, image_size)(x)
    x = layers.GlobalAveragePooling2D(name=FEATURES)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=HEAD, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="resnet50" if caffe else backbone.lower())


register("resnet50_scratch")(resnet50)
register("resnet50_tl", pretrained=True)(resnet50)
register("resnet50_ft", pretrained=True)(resnet50)  # the pretrained init, trained like scratch (params.yaml)
register("resnet50_lp", pretrained=True)(resnet50)  # the linear probe: the backbone never trains (params.yaml)
