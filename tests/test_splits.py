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
    with pytest.raises(ValueError, match="class 0 has 2 training examples, fewer than examples_per_class=3"):
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


def face_params(fmt="csv", families=None):
    return {"data": {"task": "face_age"}, "face_age": {"format": fmt},
            "split": {"random_state": 42, "face_age": {"families": families, "val_size": 0.15, "test_size": 0.15}}}


@pytest.mark.parametrize("draw", [0, 1, 2])
def test_no_person_spans_two_splits_when_some_rows_lack_an_identity(draw):
    """200 rows of 20 people, 3 rows without an identity (the old code fell back to an image split and
    put 14 to 18 of the 20 people in train and test both)."""
    from stages.split import assign

    rng = np.random.default_rng(draw)
    people = np.repeat([f"p{i}" for i in range(20)], 10)
    people[rng.choice(200, 3, replace=False)] = ""
    y = rng.integers(0, 8, 200)
    parts, how = assign(y, people, np.full(200, -1), face_params())
    assert "by identity" in how and "3 images without one" in how
    seen = {name: set(people[index]) - {""} for name, index in parts.items()}
    assert not (seen["train"] & seen["val"] or seen["train"] & seen["test"] or seen["val"] & seen["test"])
    assert sorted(np.concatenate(list(parts.values()))) == list(range(200)), "every image in exactly one split"


def test_identity_groups_keep_known_identities_and_make_the_others_singletons():
    from tlstudy.faces import identity_groups

    groups = identity_groups(np.array(["F1", "", "F1", "", "F2"]))
    assert groups[0] == groups[2] != groups[4] and len(set(groups)) == 4
    assert groups[1] != groups[3]


def test_overlapping_family_ranges_are_an_error_naming_both():
    from stages.split import assign

    families = {"train": [1, 300], "val": [290, 310], "test": [851, 900]}
    with pytest.raises(ValueError, match=r"train \[1, 300\] and val \[290, 310\] overlap"):
        assign(np.zeros(4), np.array(["F0001"] * 4), np.full(4, -1), face_params("aihub", families))


def test_a_format_without_identities_is_split_by_image_and_says_so():
    from stages.split import assign

    y = np.repeat(np.arange(4), 25)
    parts, how = assign(y, np.full(100, ""), np.full(100, -1), face_params("utkface"))
    assert how.startswith("by image") and sum(len(p) for p in parts.values()) == 100
