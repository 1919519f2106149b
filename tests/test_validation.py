"""The validation budget, recalibrated validation figures and the learning-rate choice."""

import keras
import numpy as np
import pytest

from tests.test_models import tiny_splits
from tlstudy.batchnorm import recalibrate_batchnorm
from tlstudy.data import Arrays, stratified_part
from tlstudy.training import (
    BudgetedValidation,
    TrainConfig,
    ValidationBudget,
    compile_model,
    seed_everything,
    train_choosing_learning_rate,
    train_model,
)


def test_stratified_part_takes_up_to_n_per_class_in_order_and_is_fixed():
    y = np.array([0] * 10 + [1] * 3 + [2] * 7)
    part = Arrays(np.arange(len(y)) * 10, y)
    chosen = stratified_part(part, 4)
    assert np.bincount(chosen.y).tolist() == [4, 3, 4], "a class smaller than n gives all it has"
    assert np.all(np.diff(chosen.x) > 0), "in their original order"
    assert np.array_equal(y[chosen.x // 10], chosen.y), "images keep their labels"
    assert np.array_equal(stratified_part(part, 4).x, chosen.x), "the same subset every time"
    assert stratified_part(part, None) is part


def bn_model():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                             keras.layers.Activation("relu"), keras.layers.Dense(3, activation="softmax")])


def bn_data(n=96):
    rng = np.random.default_rng(3)
    y = np.arange(n) % 3
    x = rng.normal(0, 1, (n, 6)).astype(np.float32) + 4.0 * np.eye(3, 6)[y]  # shifted: stale stats hurt
    return x, y.astype(np.uint8)


def fit_bn(callbacks):
    seed_everything(7)
    model = bn_model()
    compile_model(model, 1e-2)
    x, y = bn_data()
    history = model.fit(x, y, batch_size=16, epochs=5, shuffle=True, verbose=0, callbacks=callbacks)
    return model, history


def test_recalibrated_validation_leaves_training_untouched_and_scores_as_evaluate_does():
    x, y = bn_data()
    val = Arrays(x[:30] + 0.1, y[:30])
    callback = BudgetedValidation(x, val, batch_size=16, every=2, last_epoch=5)
    with_callback, history = fit_bn([callback])
    without, _ = fit_bn([])
    for a, b in zip(with_callback.get_weights(), without.get_weights()):  # moving statistics included
        np.testing.assert_array_equal(a, b)
    assert callback.scored == [1, 3, 4], "every second epoch and the last"
    assert len(history.history["val_accuracy"]) == 3
    # What evaluate does: recalibrate on the training images, then score.
    recalibrate_batchnorm(without, x, 16)
    expected = float(np.mean(without.predict(val.x, verbose=0).argmax(axis=1) == val.y))
    assert history.history["val_accuracy"][-1] == pytest.approx(expected)


def test_validation_budget_limits_the_images_scored():
    """Unlearnable labels, so that the subset's accuracy and the whole split's differ: the figure
    logged is the one of the 2-per-class subset, after the last of three epochs only."""
    data = tiny_splits(n=90)
    rng = np.random.default_rng(5)
    noisy = Arrays(data.val.x + rng.random(data.val.x.shape, dtype=np.float32), rng.permutation(data.val.y))
    data = type(data)(data.train, noisy, data.test, data.class_names)
    config = TrainConfig(epochs=3, batch_size=16, validation=ValidationBudget(examples_per_class=2, every=3))
    model, history = train_model("mlp", data, config, seed=0)
    assert history["val_epoch"] == [2] and len(history["val_accuracy"]) == 1
    budget = stratified_part(noisy, 2)
    assert len(budget) == 6
    on_budget = model.evaluate(budget.x, budget.y, verbose=0, return_dict=True)["accuracy"]
    on_all = model.evaluate(noisy.x, noisy.y, verbose=0, return_dict=True)["accuracy"]
    assert history["val_accuracy"][0] == pytest.approx(on_budget) and on_budget != pytest.approx(on_all)


def test_the_learning_rate_grid_keeps_the_rate_that_learns():
    """1e-7 learns nothing in three epochs; 1e-2 separates the classes (> 90%, measured 100%)."""
    data = tiny_splits(n=150)
    config = TrainConfig(epochs=3, batch_size=16, learning_rate_grid=[1e-7, 1e-2])
    model, history, rate = train_choosing_learning_rate("mlp", data, config, seed=0)
    assert rate == 1e-2 and history["val_accuracy"][-1] > 0.9
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-2)

def dropout_bn_model():
    """Dense -> Dropout -> BatchNorm: recalibration in training mode draws dropout masks."""
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.Dropout(0.3, seed=1),
                             keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
                             keras.layers.Dense(3, activation="softmax")])


def test_validation_leaves_training_bit_identical_with_dropout_and_batchnorm():
    """The recalibration pass draws dropout masks, which steps the layers' random-generator states:
    unless validation puts them back, the next epoch's masks, and so its weights, differ."""
    x, y = bn_data()
    val = Arrays(x[:30] + 0.1, y[:30])
    trained = []
    for callbacks in ([BudgetedValidation(x, val, batch_size=16, every=1, last_epoch=4)], []):
        seed_everything(7)
        model = dropout_bn_model()
        compile_model(model, 1e-2)
        model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
        trained.append(model.get_weights())
    for a, b in zip(*trained):
        np.testing.assert_array_equal(a, b)
