"""The two ResNet50 arms, the transfer schedule and BatchNorm recalibration."""

from dataclasses import replace

import keras
import numpy as np
import pytest

from tests.conftest import ROOT
from tlstudy.batchnorm import batchnorm_layers, recalibrate_batchnorm
from tlstudy.data import Arrays, Splits
from tlstudy.models import BACKBONE, HEAD, IMAGENET_BGR_MEAN, build_model, resnet50_backbone
from tlstudy.params import load_params
from tlstudy.training import (
    EpochCheckpoint,
    TrainConfig,
    TransferSchedule,
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
    config = replace(TrainConfig.from_params(params, "resnet50_lp"), epochs=4, batch_size=16)  # past 3, the default frozen_epochs
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
