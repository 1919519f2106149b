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
            layers.Dense(num_classes, activation="softmax"),
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
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="cnn",
    )


# ImageNet's per-channel means on the 0-255 scale, in the BGR order Keras' ResNet50 weights expect
# (keras.applications.resnet50.preprocess_input, "caffe" mode).
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def resnet50_backbone(image_size: int) -> keras.Model:
    """Keras' ResNet50 without its top, randomly initialised; pretrained weights are loaded afterwards."""
    backbone = keras.applications.ResNet50(include_top=False, weights=None,
                                           input_shape=(image_size, image_size, 3))
    backbone.name = BACKBONE
    return backbone


def resnet50(input_shape, num_classes, input_dtype="float32", image_size: int = 32) -> keras.Model:
    """ResNet50 without top, global average pooling, softmax head.

    Images are resized to ``image_size``, grayscale is repeated to three channels and RGB is turned
    into BGR, and the input is normalised as Keras' ImageNet weights expect, all inside the model,
    so training, evaluation and any later use share one path.
    """
    if image_size < 32:
        raise ValueError(f"models.<resnet>.image_size must be at least 32 (Keras' ResNet50 minimum), got {image_size}")
    inputs, *scaling = input_layers(input_shape, input_dtype)
    x = scaling[0](inputs) if scaling else inputs
    x = layers.Reshape((*input_shape, 1))(x) if len(input_shape) == 2 else x
    x = layers.Resizing(image_size, image_size)(x)
    x = layers.Concatenate()([x, x, x]) if x.shape[-1] == 1 else RgbToBgr()(x)
    x = layers.Rescaling(255.0)(x)
    x = layers.Normalization(mean=IMAGENET_BGR_MEAN, variance=(1.0, 1.0, 1.0))(x)
    x = resnet50_backbone(image_size)(x)
    x = layers.GlobalAveragePooling2D(name=FEATURES)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=HEAD)(x)
    return keras.Model(inputs, outputs, name="resnet50")


register("resnet50_scratch")(resnet50)
register("resnet50_tl", pretrained=True)(resnet50)
register("resnet50_ft", pretrained=True)(resnet50)  # the pretrained init, trained like scratch (params.yaml)
register("resnet50_lp", pretrained=True)(resnet50)  # the linear probe: the backbone never trains (params.yaml)
