"""The training recipe: augmentation, AdamW's weight decay and the best validated epoch."""

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.test_models import tiny_splits
from tests.test_resume import Interrupt, assert_same_model
from tlstudy.data import Arrays, Splits, stratified_part
from tlstudy.training import (
    Augment,
    Resume,
    TrainConfig,
    augmenter,
    compile_model,
    epoch_batches,
    predict,
    train_model,
)

AUGMENTED = TrainConfig(epochs=4, batch_size=16, learning_rate=1e-3, augment=Augment(flip=True, translate=0.1))


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` moved down ``dy`` and right ``dx`` pixels, zeros where it came from."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                       max(-dx, 0):w - max(dx, 0)]
    return out


@pytest.mark.parametrize("shape, dtype", [((8, 8), np.float32), ((8, 8, 3), np.uint8)])
def test_each_augmented_image_is_its_image_flipped_or_not_and_shifted_by_whole_pixels(shape, dtype):
    """Every output equals one of the 2 x 5 x 5 images made by hand (flip or not, shifts of up to 0.25 x 8
    = 2 pixels each way), each of them turns up over 400 seeds, and the flip comes about half the time."""
    image = (np.arange(np.prod(shape)) % 251 + 1).reshape(shape).astype(dtype)  # no two pixels alike
    transform = augmenter(shape, Augment(flip=True, translate=0.25))
    candidates = {(flip, dy, dx): shifted(image[:, ::-1] if flip else image, dy, dx)
                  for flip in (False, True) for dy in range(-2, 3) for dx in range(-2, 3)}
    seen = []
    for seed in range(400):
        out = transform(tf.constant(image), tf.constant([seed, 7], tf.int64)).numpy()
        assert out.dtype == dtype and out.shape == shape
        matches = [key for key, candidate in candidates.items() if np.array_equal(out, candidate)]
        assert len(matches) == 1, f"seed {seed}: not a flip and whole-pixel shift of the image"
        seen.append(matches[0])
    assert set(seen) == set(candidates)
    assert 0.4 < np.mean([flip for flip, _, _ in seen]) < 0.6


def test_without_a_flip_or_shift_the_augmenter_changes_nothing_it_was_not_asked_to():
    image = np.arange(64, dtype=np.float32).reshape(8, 8)
    only_flip = augmenter(image.shape, Augment(flip=True))
    only_shift = augmenter(image.shape, Augment(translate=0.25))
    for seed in range(50):
        flipped = only_flip(tf.constant(image), tf.constant([seed, 0], tf.int64)).numpy()
        assert np.array_equal(flipped, image) or np.array_equal(flipped, image[:, ::-1])
        moved = only_shift(tf.constant(image), tf.constant([seed, 0], tf.int64)).numpy()
        assert any(np.array_equal(moved, shifted(image, dy, dx)) for dy in range(-2, 3) for dx in range(-2, 3))


def test_augmented_training_reproduces_resumes_after_a_kill_and_differs_from_plain(tmp_path):
    data = tiny_splits(n=90)
    a, history = train_model("mlp", data, AUGMENTED, seed=3)
    b, _ = train_model("mlp", data, AUGMENTED, seed=3)
    assert_same_model(a, b)
    plain, _ = train_model("mlp", data, replace(AUGMENTED, augment=Augment()), seed=3)
    assert any(not np.array_equal(x, y) for x, y in zip(a.get_weights(), plain.get_weights()))

    resume = Resume(tmp_path / "run", "these inputs")
    with pytest.raises(KeyboardInterrupt):
        train_model("mlp", data, AUGMENTED, seed=3, callbacks=[Interrupt(after=2)], resume=resume)
    resumed, resumed_history = train_model("mlp", data, AUGMENTED, seed=3, resume=resume)
    assert_same_model(resumed, a)
    assert resumed_history == history


def test_validation_leaves_augmented_training_bit_identical():
    """Validation scores the model between epochs (the CNN's Dropout layers inactive): the augmentation's
    draws, which live in the input pipeline, must not depend on it. (With BatchNorm and Dropout, validation's
    passes in training mode restore every random state: tests/test_validation.py.)"""
    data = tiny_splits(n=90)
    scored_every_epoch, _ = train_model("cnn", data, replace(AUGMENTED, validation=replace(AUGMENTED.validation,
                                                                                          every=1)), seed=1)
    scored_at_the_end, _ = train_model("cnn", data, replace(AUGMENTED, validation=replace(AUGMENTED.validation,
                                                                                         every=100)), seed=1)
    assert_same_model(scored_every_epoch, scored_at_the_end, "weights")


def test_weight_decay_shrinks_kernels_by_rate_times_decay_and_spares_biases_and_batchnorm():
    """One step of AdamW against one of Adam from the same weights and batch: Keras' AdamW decays first,
    w <- w - lr * wd * w, then takes Adam's step, so the kernels differ by lr * wd * w and the rest not at all."""
    x = np.random.default_rng(0).random((16, 5), dtype=np.float32)
    y = np.arange(16) % 3
    lr, wd, before, after = 0.01, 0.5, {}, {}
    for decay in (0.0, wd):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), keras.layers.BatchNormalization(),
                                  keras.layers.Dense(3, activation="softmax")])
        before[decay] = [w.numpy() for w in model.trainable_weights]
        compile_model(model, lr, weight_decay=decay)
        model.train_on_batch(x, y)
        after[decay] = [w.numpy() for w in model.trainable_weights]
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    names = [w.name for w in model.trainable_weights]
    assert names == ["kernel", "bias", "gamma", "beta", "kernel", "bias"]
    for name, w0, adam, adamw in zip(names, before[wd], after[0.0], after[wd], strict=True):
        expected = adam - (lr * wd * w0 if name == "kernel" else 0)
        np.testing.assert_allclose(adamw, expected, rtol=1e-6, atol=1e-7, err_msg=name)
    for w0, w0_adam in zip(before[wd], before[0.0]):
        np.testing.assert_array_equal(w0, w0_adam)

class Record(keras.callbacks.Callback):
    """Every epoch's weights, as they stand at the epoch's end."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.numpy() for w in self.model.weights])


class Wreck(keras.callbacks.Callback):
    """Replace every weight with loud noise after one epoch: the MLP scores near chance on validation for
    the epochs after (Adam's small steps cannot undo it in two), so the kept epoch must be an earlier one."""

    def __init__(self, after: int):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            rng = np.random.default_rng(0)
            for w in self.model.weights:
                w.assign(rng.normal(0, 10, w.shape).astype(w.dtype))

def test_the_best_validated_epoch_is_kept_and_the_test_split_chooses_nothing():
    data = tiny_splits(n=150)
    config = replace(AUGMENTED, epochs=5, keep="best", validation=replace(AUGMENTED.validation, every=1))
    record = Record()
    model, history = train_model("mlp", data, config, seed=0, callbacks=[record, Wreck(after=3)])
    scores = history["val_accuracy"]
    assert max(scores[:3]) > 0.8 and max(scores[3:]) < 0.6, scores  # the wreck worked
    kept = history["kept_epoch"]
    assert kept == int(np.argmax(scores)) < 3
    for value, recorded in zip(model.get_weights(), record.weights[kept], strict=True):
        np.testing.assert_array_equal(value, recorded)
    budget = stratified_part(data.val, config.validation.examples_per_class)
    assert np.mean(predict(model, budget.x).argmax(axis=1) == budget.y) == pytest.approx(scores[kept])

    # The test split replaced by noise with other labels: the same epoch and the same weights.
    rng = np.random.default_rng(1)
    noise = Arrays(rng.random(data.test.x.shape, dtype=np.float32), rng.permutation(data.test.y))
    other, other_history = train_model("mlp", Splits(data.train, data.val, noise, data.class_names), config,
                                       seed=0, callbacks=[Record(), Wreck(after=3)])
    assert other_history["kept_epoch"] == kept
    assert_same_model(other, model, "weights")

    last, last_history = train_model("mlp", data, replace(config, keep="last"), seed=0, callbacks=[Wreck(after=3)])
    assert last_history["kept_epoch"] == 4
    assert not np.array_equal(last.get_weights()[0], model.get_weights()[0])


def test_a_resumed_run_keeps_the_same_best_epoch(tmp_path):
    """Killed after the best epoch has gone by: the checkpoint must carry its weights."""
    data = tiny_splits(n=150)
    config = replace(AUGMENTED, epochs=5, keep="best", validation=replace(AUGMENTED.validation, every=1))
    expected, history = train_model("mlp", data, config, seed=2, callbacks=[Wreck(after=3)])
    resume = Resume(tmp_path / "run", "these inputs")
    with pytest.raises(KeyboardInterrupt):
        train_model("mlp", data, config, seed=2, callbacks=[Wreck(after=3), Interrupt(after=4)], resume=resume)
    resumed, resumed_history = train_model("mlp", data, config, seed=2, resume=resume)
    assert resumed_history["kept_epoch"] == history["kept_epoch"] < 3
    assert_same_model(resumed, expected, "weights")



def test_each_epoch_draws_its_own_changes_and_a_resumed_epoch_the_same_ones():
    data = tiny_splits(n=20).train
    augment = Augment(flip=True, translate=0.1)
    epochs = [batch for batch, _ in epoch_batches(data, 20, seed=5, first_epoch=0, epochs=3, augment=augment)]
    orders = [np.random.default_rng([5, epoch]).permutation(20) for epoch in range(3)]
    by_image = [x.numpy()[np.argsort(order)] for x, order in zip(epochs, orders)]  # back in the data's order
    assert not np.array_equal(by_image[0], by_image[1]) and not np.array_equal(by_image[1], by_image[2])
    resumed = [batch for batch, _ in epoch_batches(data, 20, seed=5, first_epoch=1, epochs=3, augment=augment)]
    for a, b in zip(resumed, epochs[1:], strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
