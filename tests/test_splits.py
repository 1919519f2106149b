import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from tlstudy.splits import parse_examples_per_class, split_test_in_half, stratified_subset


@pytest.mark.parametrize("value, expected", [("all", None), ("ALL", None), (None, None), (10, 10), ("25", 25)])
def test_parse_examples_per_class(value, expected):
    assert parse_examples_per_class(value) == expected


@pytest.mark.parametrize("value", [0, -3, "ten", 2.5, "1e3"])
def test_parse_examples_per_class_rejects(value):
    with pytest.raises(ValueError, match="examples_per_class must be a positive integer or 'all'"):
        parse_examples_per_class(value)


def test_stratified_subset_counts_and_seed():
    y = np.repeat(np.arange(10), 50)
    a = stratified_subset(y, 7, seed=0)
    assert len(a) == 70 and len(set(a)) == 70
    assert np.bincount(y[a]).tolist() == [7] * 10
    np.testing.assert_array_equal(a, stratified_subset(y, 7, seed=0))
    assert set(a) != set(stratified_subset(y, 7, seed=1))
    assert not np.all(np.diff(y[a]) >= 0), "the subset must be shuffled, not sorted by class"


def test_stratified_subset_all_and_too_many():
    y = np.array([0, 0, 1, 1, 1])
    np.testing.assert_array_equal(stratified_subset(y, None, 3), np.arange(5))
    with pytest.raises(ValueError, match="class 0 has 2 training examples, fewer than data.examples_per_class=3"):
        stratified_subset(y, 3, 0)


def test_split_test_in_half_is_the_studys_split():
    x = np.arange(10000)
    y = x % 10
    (x_val, y_val), (x_test, y_test) = split_test_in_half(x, y, 0.5, 42)
    assert len(x_val) == len(x_test) == 5000
    assert not set(x_val) & set(x_test)
    _, expected_test = train_test_split(x, test_size=0.5, random_state=42)
    np.testing.assert_array_equal(x_test, expected_test)
    np.testing.assert_array_equal(y_test, expected_test % 10)
