"""The two ResNet50 arms, the transfer schedule and BatchNorm recalibration."""

import subprocess
import sys
from dataclasses import replace

import keras
import numpy as np
import pytest

from tests.conftest import ROOT
from tlstudy.batchnorm import batchnorm_layers, recalibrate_batchnorm
from tlstudy.data import Arrays, Splits
from tlstudy.models import BACKBONE, HEAD, IMAGENET_BGR_MEAN, RgbToBgr, backbone_model, build_model, resnet50_backbone
from tlstudy.params import BACKBONES, load_params
from tlstudy.training import (
    EpochCheckpoint,
    TrainConfig,
    TransferSchedule,
    ValidationBudget,
    compile_model,
    epoch_batches,
    save_model,
    seed_everything,
    set_fine_tuning,
    train_head_on_features,
    train_model,
)


def tiny_splits(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3).astype(np.uint8)
    x = rng.random((n, 28, 28), dtype=np.float32) * 0.3
    for label in range(3):
        x[y == label, 9 * label: 9 * label + 9, :] += 0.6
    part = Arrays(x, y)
    return Splits(train=part, val=Arrays(x[:12], y[:12]), test=part, class_names=["a", "b", "c"])


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A backbone weights file, as the pretrain stage writes it, from a seeded random backbone."""
    seed_everything(123)
    path = tmp_path_factory.mktemp("weights") / "backbone.weights.h5"
    resnet50_backbone(32).save_weights(path)
    return path


def test_resnet_shapes_and_preprocessing():
    model = build_model("resnet50_scratch", (28, 28), 10, image_size=32)
    assert model.output_shape == (None, 10)
    assert model.get_layer(BACKBONE).input_shape == (None, 32, 32, 3)
    with pytest.raises(ValueError, match="image_size must be at least 32"):
        build_model("resnet50_scratch", (28, 28), 10, image_size=28)


def test_rgb_uint8_images_reach_the_backbone_as_imagenet_expects(tmp_path):
    """Face-age images: uint8 RGB scaled, turned to BGR and centred by ImageNet's means inside the
    model; the saved model loads with its RgbToBgr layer."""
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    model = build_model("resnet50_scratch", (32, 32, 3), 8, "uint8", image_size=32)
    normalised = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    preprocessing = keras.Model(model.inputs, normalised.output)
    expected = x[..., ::-1].astype(np.float32) - np.array(IMAGENET_BGR_MEAN, np.float32)
    np.testing.assert_allclose(preprocessing.predict(x, verbose=0), expected, atol=1e-3)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_transfer_arm_loads_the_file_and_scratch_arm_does_not(weights_file):
    config = TrainConfig(epochs=0, batch_size=16, model_options={"image_size": 32})
    data = tiny_splits()
    tl, _ = train_model("resnet50_tl", data, config, seed=0, backbone_weights=weights_file)
    scratch, _ = train_model("resnet50_scratch", data, config, seed=0)
    reference = resnet50_backbone(32)
    reference.load_weights(weights_file)
    kernel = reference.get_layer("conv1_conv").kernel.numpy()
    np.testing.assert_array_equal(tl.get_layer(BACKBONE).get_layer("conv1_conv").kernel.numpy(), kernel)
    assert not np.allclose(scratch.get_layer(BACKBONE).get_layer("conv1_conv").kernel.numpy(), kernel)
    # Paired arms: same seed, same initial head.
    np.testing.assert_array_equal(tl.get_layer(HEAD).kernel.numpy(), scratch.get_layer(HEAD).kernel.numpy())


def test_trainable_weights_per_phase():
    model = build_model("resnet50_tl", (28, 28), 3, image_size=32)
    model.get_layer(BACKBONE).trainable = False
    assert len(model.trainable_weights) == 2  # the head's kernel and bias
    set_fine_tuning(model, "conv5")
    conv5 = [w for w in model.get_layer(BACKBONE).trainable_weights]
    assert conv5 and all(w.path.split("/")[-2].startswith("conv5") for w in conv5)
    set_fine_tuning(model, "all")
    assert len(model.trainable_weights) == len(model.get_layer(BACKBONE).trainable_weights) + 2
    assert len(model.get_layer(BACKBONE).trainable_weights) == 212  # 53 conv + 53 BN layers, 2 weights each
    with pytest.raises(ValueError, match="fine_tune must be one of all, conv2, conv3, conv4, conv5, got 'conv9'"):
        set_fine_tuning(model, "conv9")


def test_cached_features_train_the_same_head_as_the_frozen_model_end_to_end(weights_file):
    data = tiny_splits()
    config = TrainConfig(epochs=3, batch_size=16, model_options={"image_size": 32})

    def fresh_model():
        seed_everything(7)
        model = build_model("resnet50_tl", (28, 28), 3, image_size=32)
        model.get_layer(BACKBONE).load_weights(weights_file)
        return model

    cached = fresh_model()
    history = train_head_on_features(cached, data, config, epochs=3, seed=7, checkpoint=EpochCheckpoint(None))

    end_to_end = fresh_model()
    end_to_end.get_layer(BACKBONE).trainable = False
    compile_model(end_to_end, config.learning_rate)
    # The same batches as the cached path: each epoch's order comes from (seed, epoch).
    reference = end_to_end.fit(epoch_batches(data.train, 16, seed=7, first_epoch=0, epochs=3), epochs=3,
                               steps_per_epoch=-(-len(data.train) // 16), shuffle=False, verbose=0)
    for a, b in zip(cached.get_layer(HEAD).get_weights(), end_to_end.get_layer(HEAD).get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history["loss"], reference.history["loss"], rtol=1e-4)


def test_schedule_spends_the_same_epoch_budget(weights_file, tmp_path):
    data = tiny_splits()
    config = TrainConfig(epochs=3, batch_size=16, model_options={"image_size": 32},
                         schedule=TransferSchedule(frozen_epochs=2, fine_tune="conv5", finetune_lr_factor=0.1))
    tl, tl_history = train_model("resnet50_tl", data, config, seed=0, backbone_weights=weights_file)
    _, scratch_history = train_model("resnet50_scratch", data, config, seed=0)
    assert len(tl_history["val_accuracy"]) == len(scratch_history["val_accuracy"]) == 3
    # The saved model remembers which BatchNorm layers trained: conv5's 10, not the frozen stages'.
    save_model(tl, tmp_path / "tl.keras")
    loaded = keras.models.load_model(tmp_path / "tl.keras", compile=False)
    frozen_bn = [layer for layer in batchnorm_layers(loaded) if not layer.name.startswith("conv5")]
    before = [layer.moving_mean.numpy().copy() for layer in frozen_bn]
    assert recalibrate_batchnorm(loaded, data.train.x, batch_size=16) == 10
    for layer, mean in zip(frozen_bn, before):
        np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)


def test_a_budget_spent_frozen_leaves_the_backbone_statistics_alone(weights_file, tmp_path):
    """Recalibrating a backbone that never trained would move the features its head learned on."""
    data = tiny_splits()
    config = TrainConfig(epochs=2, batch_size=16, model_options={"image_size": 32},
                         schedule=TransferSchedule(frozen_epochs=3))
    model, history = train_model("resnet50_tl", data, config, seed=0, backbone_weights=weights_file)
    assert len(history["val_accuracy"]) == 2
    save_model(model, tmp_path / "tl.keras")
    loaded = keras.models.load_model(tmp_path / "tl.keras", compile=False)
    before = loaded.predict(data.test.x, verbose=0)
    assert recalibrate_batchnorm(loaded, data.train.x, batch_size=16) == 0
    np.testing.assert_array_equal(loaded.predict(data.test.x, verbose=0), before)


def small_bn_model():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, kernel_initializer="ones")(inputs)
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_recalibration_changes_only_moving_statistics_and_recovers_batch_statistics():
    seed_everything(0)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(512, 4)) * 3 + 5).astype(np.float32)  # far from the initial mean 0, variance 1
    model = small_bn_model()
    trainable_before = [w.numpy().copy() for w in model.trainable_weights]
    bn = next(batchnorm_layers(model))
    stale = model.predict(x, verbose=0)
    batch_stats = model(x, training=True).numpy()  # one batch of everything: what the weights "mean"
    bn.moving_mean.assign(np.zeros(8))  # undo the update that call made
    bn.moving_variance.assign(np.ones(8))

    assert recalibrate_batchnorm(model, x, batch_size=128) == 1
    for before, after in zip(trainable_before, model.trainable_weights):
        np.testing.assert_array_equal(before, after.numpy())
    hidden = x @ np.ones((4, 8), np.float32) + model.layers[1].bias.numpy()
    np.testing.assert_allclose(bn.moving_mean.numpy(), hidden.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(model.predict(x, verbose=0), batch_stats, atol=0.02)
    assert np.abs(stale - batch_stats).max() > 0.1, "the stale model should have been wrong to begin with"
    assert bn.momentum == 0.99 and bn.trainable


class CountedCalls(keras.layers.Layer):
    """Counts the Python calls of ``call``: every call when eager, once per trace inside a tf.function."""

    calls = 0

    def call(self, inputs):
        CountedCalls.calls += 1
        return inputs


def test_recalibration_traces_once_per_model_for_every_batch_size():
    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), CountedCalls(), keras.layers.BatchNormalization()])
    CountedCalls.calls = 0  # building the model called it once, symbolically
    recalibrate_batchnorm(model, x, batch_size=32)  # batches of 32, 32, 32 and 4
    bn = model.layers[-1]
    batches = [x[start:start + 32] for start in range(0, 100, 32)]
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(),  # each batch's own variance, weighted by its size
                               sum(len(batch) * batch.var(axis=0) for batch in batches) / 100, rtol=1e-5)
    recalibrate_batchnorm(model, x, batch_size=16)
    recalibrate_batchnorm(model, x[:50], batch_size=50)
    np.testing.assert_allclose(bn.moving_mean.numpy(), x[:50].mean(axis=0), rtol=1e-5)
    assert CountedCalls.calls == 1, "one trace, whatever the batch sizes"
    # Another model of the same shape has its own trace, and recalibrating it leaves the first alone.
    other = keras.Sequential([keras.Input((4,)), CountedCalls(), keras.layers.BatchNormalization()])
    CountedCalls.calls = 0
    recalibrate_batchnorm(other, x + 10, batch_size=32)
    assert CountedCalls.calls == 1
    np.testing.assert_allclose(other.layers[-1].moving_mean.numpy(), (x + 10).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.numpy(), x[:50].mean(axis=0), rtol=1e-5)


def test_recalibration_after_freezing_a_layer_leaves_it_alone():
    """A layer frozen after an earlier recalibration keeps its statistics: the traced pass of the
    earlier set of trainable layers would have recomputed it."""
    x = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(), keras.layers.Dense(4),
                              keras.layers.BatchNormalization()])
    first, second = batchnorm_layers(model)
    assert recalibrate_batchnorm(model, x, batch_size=16) == 2
    first.trainable = False
    kept = first.moving_mean.numpy().copy()
    assert recalibrate_batchnorm(model, x + 5, batch_size=16) == 1
    np.testing.assert_array_equal(first.moving_mean.numpy(), kept)
    hidden = model.layers[1](first(x + 5, training=False))  # what the second layer sees
    np.testing.assert_allclose(second.moving_mean.numpy(), hidden.numpy().mean(axis=0), rtol=1e-4, atol=1e-5)


def test_recalibration_skips_frozen_batchnorm_layers_nested_or_not():
    seed_everything(0)
    x = (np.random.default_rng(0).normal(size=(64, 4)) * 3 + 5).astype(np.float32)
    model = small_bn_model()
    bn = next(batchnorm_layers(model))
    bn.trainable = False
    assert recalibrate_batchnorm(model, x) == 0
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(8))
    outer = keras.Sequential([keras.Input((4,)), small_bn_model()])
    outer.layers[0].trainable = False  # a frozen inner model freezes its BatchNorm, whatever the layer's flag
    assert recalibrate_batchnorm(outer, x) == 0
    outer.layers[0].trainable = True
    assert recalibrate_batchnorm(outer, x) == 1


class StartingWeights(keras.callbacks.Callback):
    """The head's kernel and the backbone's first convolution as a fit starts: what a run starts from."""

    def on_train_begin(self, logs=None):
        self.head = self.model.get_layer(HEAD).kernel.numpy()
        if BACKBONE in [layer.name for layer in self.model.layers]:  # not in a head trained on features
            self.conv = self.model.get_layer(BACKBONE).get_layer("conv1_conv").kernel.numpy()


def test_init_only_arm_differs_from_scratch_in_initial_weights_only(weights_file):
    """params.yaml's resnet50_ft: the pretrained backbone, trained whole from the first epoch at the
    scratch arm's learning rate, from the scratch arm's initial head (the same seed must draw the same
    head, whatever loading the backbone does)."""
    params = load_params(ROOT / "params.yaml")
    configs = {name: replace(TrainConfig.from_params(params, name), epochs=1, batch_size=16)
               for name in ("resnet50_ft", "resnet50_scratch")}
    assert configs["resnet50_ft"].schedule == TransferSchedule(frozen_epochs=0, fine_tune="all",
                                                               finetune_lr_factor=1.0)
    data = tiny_splits()
    start = {name: StartingWeights() for name in configs}
    ft, _ = train_model("resnet50_ft", data, configs["resnet50_ft"], seed=0, backbone_weights=weights_file,
                        callbacks=[start["resnet50_ft"]])
    scratch, _ = train_model("resnet50_scratch", data, configs["resnet50_scratch"], seed=0,
                             callbacks=[start["resnet50_scratch"]])
    assert ft.optimizer.learning_rate.numpy() == scratch.optimizer.learning_rate.numpy() == params["train"][
        "learning_rate"]
    assert len(ft.trainable_weights) == len(scratch.trainable_weights) == 212 + 2
    np.testing.assert_array_equal(start["resnet50_ft"].head, start["resnet50_scratch"].head)
    reference = resnet50_backbone(32)
    reference.load_weights(weights_file)
    np.testing.assert_array_equal(start["resnet50_ft"].conv, reference.get_layer("conv1_conv").kernel.numpy())
    assert not np.array_equal(start["resnet50_scratch"].conv, start["resnet50_ft"].conv)



def test_linear_probe_arm_trains_the_head_alone_for_the_whole_budget(weights_file):
    """params.yaml's resnet50_lp: every epoch on the frozen pretrained backbone, whose weights and
    BatchNorm statistics end exactly as loaded; the head moves."""
    params = load_params(ROOT / "params.yaml")
    # 4 epochs: past 3, the default frozen_epochs, so that only fine_tune none keeps the backbone frozen
    config = replace(TrainConfig.from_params(params, "resnet50_lp"), epochs=4, batch_size=16)
    assert config.schedule.fine_tune == "none"
    start = StartingWeights()
    model, history = train_model("resnet50_lp", tiny_splits(), config, seed=0, backbone_weights=weights_file,
                                 callbacks=[start])
    assert history["epoch"] == [0, 1, 2, 3]
    reference = resnet50_backbone(32)
    reference.load_weights(weights_file)
    backbone = model.get_layer(BACKBONE)
    assert not backbone.trainable
    for trained, loaded in zip(backbone.weights, reference.weights):  # moving statistics included
        np.testing.assert_array_equal(trained.numpy(), loaded.numpy())
    assert not np.array_equal(model.get_layer(HEAD).kernel.numpy(), start.head)


def replaced_resnet50(input_shape, num_classes, image_size=32):
    """The ResNet50 builder as it was before backbones became a choice, layer for layer."""
    inputs = keras.Input(input_shape, dtype="float32")
    x = keras.layers.Reshape((*input_shape, 1))(inputs) if len(input_shape) == 2 else inputs
    x = keras.layers.Resizing(image_size, image_size)(x)
    x = keras.layers.Concatenate()([x, x, x]) if x.shape[-1] == 1 else RgbToBgr()(x)
    x = keras.layers.Rescaling(255.0)(x)
    x = keras.layers.Normalization(mean=IMAGENET_BGR_MEAN, variance=(1.0, 1.0, 1.0))(x)
    backbone = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def unnamed_config(layer):
    config = layer.get_config()
    config.pop("name", None)
    return config


@pytest.mark.parametrize("input_shape", [(28, 28), (32, 32, 3)])
def test_default_backbone_builds_the_same_resnet50_weight_for_weight(input_shape):
    """The default regime's results stay: ResNet50 is the default, built as before under the same seed."""
    seed_everything(4)
    before = replaced_resnet50(input_shape, 10)
    seed_everything(4)
    now = build_model("resnet50_scratch", input_shape, 10, image_size=32)
    assert [type(layer) for layer in now.layers] == [type(layer) for layer in before.layers]
    for a, b in zip(now.layers, before.layers):
        if a.name != BACKBONE:
            assert unnamed_config(a) == unnamed_config(b), a.name
    backbones = now.get_layer(BACKBONE), before.layers[-3]
    assert [type(layer) for layer in backbones[0].layers] == [type(layer) for layer in backbones[1].layers]
    assert len(now.weights) == len(before.weights) == 318 + 2  # 53 conv (kernel, bias), 53 BN (4 each), head
    for a, b in zip(now.weights, before.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


SMALL = ["MobileNetV3Small", "EfficientNetB0"]
PREPROCESS = {"ResNet50": keras.applications.resnet50.preprocess_input,
              "MobileNetV3Small": keras.applications.mobilenet_v3.preprocess_input,
              "EfficientNetB0": keras.applications.efficientnet.preprocess_input}


@pytest.mark.parametrize("backbone", ["ResNet50", *SMALL])
def test_each_backbone_sees_its_images_as_its_preprocess_input_makes_them(backbone):
    """uint8 RGB images reach the application as Keras' own preprocess_input for it would give them
    (ResNet50: BGR minus ImageNet's means; MobileNetV3 and EfficientNet: RGB 0-255, normalised inside)."""
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    model = build_model("resnet50_scratch", (32, 32, 3), 5, "uint8", image_size=32, backbone=backbone)
    position = [layer.name for layer in model.layers].index(BACKBONE)
    fed = keras.Model(model.inputs, model.layers[position - 1].output).predict(x, verbose=0)
    np.testing.assert_allclose(fed, PREPROCESS[backbone](x.astype(np.float32)), atol=1e-3)
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize("backbone", ["ResNet50", *SMALL])
def test_minimum_image_size_is_keras_own(backbone):
    minimum = BACKBONES[backbone][0]
    application = getattr(keras.applications, backbone)
    with pytest.raises(ValueError):  # Keras' own check, the reference for the table
        application(include_top=False, weights=None, input_shape=(minimum - 1, minimum - 1, 3))
    with pytest.raises(ValueError, match=f"image_size must be at least {minimum} \\(Keras' {backbone} minimum\\)"):
        build_model("resnet50_scratch", (28, 28), 3, image_size=minimum - 1, backbone=backbone)
    assert build_model("resnet50_scratch", (28, 28), 3, image_size=minimum, backbone=backbone).output_shape == (None, 3)
    with pytest.raises(ValueError, match="backbone is 'VGG16'; use one of ResNet50, MobileNetV3Small, EfficientNetB0"):
        build_model("resnet50_scratch", (28, 28), 3, backbone="VGG16")


def test_fine_tuning_from_a_stage_of_each_backbone():
    model = build_model("resnet50_tl", (28, 28), 3, image_size=32, backbone="EfficientNetB0")
    set_fine_tuning(model, "block6", "EfficientNetB0")
    trained = {w.path.split("/")[-2] for w in model.get_layer(BACKBONE).trainable_weights}
    assert trained and all(name.startswith(("block6", "block7", "top_")) for name in trained), trained
    assert any(name.startswith("block6a") for name in trained) and "top_conv" in trained
    set_fine_tuning(model, "all", "EfficientNetB0")
    assert len(model.get_layer(BACKBONE).trainable_weights) == len(
        keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3)).trainable_weights)
    mobile = build_model("resnet50_tl", (28, 28), 3, image_size=32, backbone="MobileNetV3Small")
    with pytest.raises(ValueError, match="fine_tune must be one of all, got 'conv5' .MobileNetV3Small has no named"):
        set_fine_tuning(mobile, "conv5", "MobileNetV3Small")
    with pytest.raises(ValueError, match="fine_tune must be one of all, block2, .*block7, got 'conv5'"):
        set_fine_tuning(model, "conv5", "EfficientNetB0")


@pytest.mark.parametrize("backbone", SMALL)
def test_scratch_transfer_and_init_only_arms_train_a_small_backbone(backbone, tmp_path):
    seed_everything(9)
    weights = tmp_path / "backbone.weights.h5"
    pretrained = backbone_model(backbone, 32)
    pretrained.save_weights(weights)
    data = tiny_splits()
    options = {"image_size": 32, "backbone": backbone}
    first = pretrained.get_layer(next(layer.name for layer in pretrained.layers if layer.weights and
                                      isinstance(layer, keras.layers.Conv2D))).name
    stage = "all" if backbone == "MobileNetV3Small" else "block7"
    arms = {"resnet50_scratch": TransferSchedule(),
            "resnet50_tl": TransferSchedule(frozen_epochs=1, fine_tune=stage, finetune_lr_factor=0.1),
            "resnet50_ft": TransferSchedule(frozen_epochs=0, fine_tune="all", finetune_lr_factor=1.0)}
    for name, schedule in arms.items():
        config = TrainConfig(epochs=2, batch_size=16, model_options=options, schedule=schedule)
        model, history = train_model(name, data, config, seed=0, backbone_weights=weights)
        assert len(history["val_accuracy"]) == 2 and np.isfinite(history["loss"]).all(), name
        kernel = model.get_layer(BACKBONE).get_layer(first).kernel.numpy()
        start = pretrained.get_layer(first).kernel.numpy()
        if name == "resnet50_tl" and stage != "all":  # the stem below block7 never trained: the file's
            np.testing.assert_array_equal(kernel, start)
        elif name == "resnet50_scratch":
            assert not np.allclose(kernel, start)
        save_model(model, tmp_path / f"{name}.keras")
        loaded = keras.models.load_model(tmp_path / f"{name}.keras", compile=False)
        np.testing.assert_allclose(loaded.predict(data.test.x, verbose=0), model.predict(data.test.x, verbose=0),
                                   atol=1e-6)


def test_mixed_bfloat16_keeps_softmax_losses_and_recalibration_in_float32():
    """train.precision: mixed_bfloat16 on a CPU: the convolutions compute in bfloat16, the head's softmax
    in float32 (probabilities sum to 1 to float32's precision, not bfloat16's 3 digits), and BatchNorm
    recalibration gives each layer the mean of what it sees on the training images."""
    data = tiny_splits()
    config = TrainConfig(epochs=1, batch_size=16, model_options={"image_size": 32}, precision="mixed_bfloat16")
    model, history = train_model("resnet50_scratch", data, config, seed=0)
    assert keras.mixed_precision.global_policy().name == "float32", "the policy does not leak out of training"
    conv = model.get_layer(BACKBONE).get_layer("conv2_block1_1_conv")
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    probabilities = model.predict(data.test.x, verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    loss = -np.mean(np.log(probabilities[np.arange(len(data.test.y)), data.test.y].astype(np.float64)))
    assert abs(model.evaluate(data.test.x, data.test.y, verbose=0)[0] - loss) < 1e-5
    assert np.isfinite(history["loss"]).all()

    bn = model.get_layer(BACKBONE).get_layer("conv2_block1_1_bn")
    stale = bn.moving_mean.numpy().copy()
    assert recalibrate_batchnorm(model, data.train.x, batch_size=16) == 53
    backbone = model.get_layer(BACKBONE)
    seen = keras.Model(backbone.inputs, conv.output)
    position = [layer.name for layer in model.layers].index(BACKBONE)
    fed = keras.Model(model.inputs, model.layers[position - 1].output).predict(data.train.x, verbose=0)
    batches = [seen(fed[start:start + 16], training=True).numpy().astype(np.float64)
               for start in range(0, len(fed), 16)]
    expected = np.concatenate(batches).mean(axis=(0, 1, 2))
    # Within bfloat16's rounding of the convolution's outputs (2^-8 of values up to ~3), where the stale
    # statistics were off by more than ten times that.
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected, rtol=0, atol=0.01)
    assert np.abs(stale - expected).max() > 0.1
    assert bn.moving_mean.dtype == "float32"


def test_auto_precision_is_mixed_float16_on_tensor_core_gpus_only(monkeypatch):
    import tensorflow as tf

    from tlstudy.training import resolve_precision

    assert resolve_precision("auto") == ("float32" if not tf.config.list_physical_devices("GPU") else
                                         resolve_precision("auto"))
    for capabilities, expected in [([], "float32"), ([(8, 0)], "mixed_float16"), ([(7, 0), (8, 6)], "mixed_float16"),
                                   ([(6, 1)], "float32"), ([(8, 0), (6, 0)], "float32")]:
        gpus = [f"GPU:{i}" for i in range(len(capabilities))]
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None, gpus=gpus: gpus)
        monkeypatch.setattr(tf.config.experimental, "get_device_details",
                            lambda gpu, c=capabilities: {"compute_capability": c[int(gpu[-1])]})
        assert resolve_precision("auto") == expected, capabilities
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="train.precision must be one of auto, float32"):
        resolve_precision("float16")


def test_precision_and_jit_compile_reach_keras_from_params():
    """XLA on needs deterministic kernels off (Keras turns XLA off under them): a fresh process, since
    once on they stay on."""
    params = load_params(ROOT / "params.yaml")
    config = TrainConfig.from_params(params, "resnet50_scratch")
    assert (config.precision, config.jit_compile) == ("auto", "auto")
    code = ("import yaml\n"
            "from dataclasses import replace\n"
            "from tests.test_resnet import tiny_splits\n"
            "from tlstudy.training import TrainConfig, train_model\n"
            "params = yaml.safe_load(open('params.yaml'))\n"
            "for jit in (True, False):\n"
            "    params['train'].update(precision='float32', jit_compile=jit, deterministic=False)\n"
            "    config = replace(TrainConfig.from_params(params, 'mlp'), epochs=1, batch_size=16)\n"
            "    print('JIT', train_model('mlp', tiny_splits(), config, seed=0)[0].jit_compile)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line for line in result.stdout.splitlines() if line.startswith("JIT")] == ["JIT True", "JIT False"]


PARAMS_CASES = [
    ({"backbone": "VGG16"}, ["models.resnet50_scratch.backbone is 'VGG16'",
                             "use one of ResNet50, MobileNetV3Small, EfficientNetB0"]),
    ({"fine_tune": "conv3", "backbone": "MobileNetV3Small"},
     ["models.resnet50_tl.fine_tune is 'conv3'; use one of none, all (MobileNetV3Small has no named stages"]),
    ({"fine_tune": "conv3", "backbone": "EfficientNetB0"}, ["use one of none, all, block2, block3"]),
    ({"fine_tune": "block4", "backbone": "EfficientNetB0"}, []),
    ({"image_size": 31, "backbone": "EfficientNetB0"}, ["image_size is 31; use an integer of at least 32 "
                                                         "(Keras' EfficientNetB0 minimum)"]),
]


@pytest.mark.parametrize("options, words", PARAMS_CASES)
def test_params_check_knows_each_backbone(options, words):
    """The same options on every ResNet arm (fine_tune on resnet50_tl only): one line per arm and problem."""
    from tlstudy.params import check_params

    params = load_params(ROOT / "params.yaml")
    for arm in ("resnet50_scratch", "resnet50_tl", "resnet50_ft", "resnet50_lp"):
        params["models"][arm].update({k: v for k, v in options.items() if k != "fine_tune"})
    if "fine_tune" in options:
        params["models"]["resnet50_tl"]["fine_tune"] = options["fine_tune"]
    problems = check_params(params)
    assert all(any(word in problem for problem in problems) for word in words), problems
    assert len(problems) == (0 if not words else 1 if "fine_tune" in options else 4), problems


def test_params_check_holds_the_backbone_equal_across_arms():
    from tlstudy.params import check_params

    params = load_params(ROOT / "params.yaml")
    params["models"]["resnet50_tl"]["backbone"] = "MobileNetV3Small"
    assert check_params(params) == [
        "models.<resnet>.backbone differs between the arms (resnet50_scratch ResNet50, resnet50_tl MobileNetV3Small, "
        "resnet50_ft ResNet50, resnet50_lp ResNet50); set one value for all, or the comparison mixes the backbone into "
        "the effect of pretraining"]
    params["models"]["resnet50_tl"]["backbone"] = "ResNet50"
    params["train"]["jit_compile"] = True
    assert check_params(params) == ["train.jit_compile is true but train.deterministic is true, under which Keras "
                                    "turns XLA off; set train.deterministic: false for XLA, or train.jit_compile: auto"]
    params["train"].update(deterministic=False, precision="float16")
    assert check_params(params) == ["train.precision is 'float16'; use one of auto, float32, mixed_float16, "
                                    "mixed_bfloat16"]


class WreckBefore(keras.callbacks.Callback):
    """Loud noise in every weight as epoch ``epoch`` begins: that epoch validates near chance."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            rng = np.random.default_rng(0)
            for w in self.model.trainable_weights:
                w.assign(rng.normal(0, 10, w.shape).astype(w.dtype))


def test_a_kept_epoch_of_the_head_phase_is_saved_as_a_frozen_backbone(weights_file):
    """The best validated epoch falls in the head phase (fine-tuning is wrecked): the kept model is the
    loaded backbone under that epoch's head, marked frozen, so evaluate recalibrates none of its BatchNorm
    statistics, as validation scored it."""
    data = tiny_splits()
    config = TrainConfig(epochs=3, batch_size=16, model_options={"image_size": 32}, keep="best",
                         validation=ValidationBudget(None, 1),
                         schedule=TransferSchedule(frozen_epochs=2, fine_tune="all", finetune_lr_factor=1.0))
    model, history = train_model("resnet50_tl", data, config, seed=0, backbone_weights=weights_file,
                                 callbacks=[WreckBefore(2)])
    assert history["kept_epoch"] < 2, history
    assert not model.get_layer(BACKBONE).trainable
    reference = resnet50_backbone(32)
    reference.load_weights(weights_file)
    for kept, loaded in zip(model.get_layer(BACKBONE).weights, reference.weights):
        np.testing.assert_array_equal(kept.numpy(), loaded.numpy())
    assert recalibrate_batchnorm(model, data.train.x, batch_size=16) == 0
