"""The original study's split and the small-data control."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from tlstudy.data import stratified_indices


def split_test_in_half(x: np.ndarray, y: np.ndarray, test_size: float, random_state: int):
    """The study's split of the official test set into validation and test, stratified by nothing,
    exactly as ``train_test_split(x, y, test_size=0.5, random_state=42)`` did."""
    x_val, x_test, y_val, y_test = train_test_split(x, y, test_size=test_size, random_state=random_state)
    return (x_val, y_val), (x_test, y_test)


def stratified_subset(y: np.ndarray, examples_per_class: int | None, seed: int) -> np.ndarray:
    """Indices of ``examples_per_class`` examples of every class, drawn with ``seed``, in a shuffled order
    (the rule of ``tlstudy.data.stratified_indices``).

    ``None`` returns every index. A class with fewer examples than asked for is an error,
    since a silently smaller class would bias the comparison.
    """
    y = np.asarray(y)
    if examples_per_class is None:
        return np.arange(len(y))
    labels, counts = np.unique(y, return_counts=True)
    if counts.min() < examples_per_class:
        label, count = labels[counts.argmin()], counts.min()
        raise ValueError(f"class {label} has {count} training examples, fewer than "
                         f"examples_per_class={examples_per_class}; lower it or use 'all'")
    return stratified_indices(y, examples_per_class, seed, shuffle=True)


def family_number(family: str) -> int:
    """AI-Hub's family id F0801 -> 801."""
    return int(family.lstrip("Ff"))


def split_by_family_ranges(groups: np.ndarray, ranges: dict) -> dict[str, np.ndarray]:
    """The study's AI-Hub split: families F<a>..F<b> (both included) per split, e.g. train [1, 299];
    images of families in no range are left out."""
    numbers = np.array([family_number(g) for g in groups])
    parts = {}
    for part in ("train", "val", "test"):
        low, high = ranges[part]
        parts[part] = np.flatnonzero((numbers >= low) & (numbers <= high))
    return parts


def split_by_group(groups: np.ndarray, val_size: float, test_size: float, random_state: int) -> dict[str, np.ndarray]:
    """Identities (families, people) drawn at random into test, validation and train: each identity's
    images all land in one split. The sizes are fractions of the identities, not of the images."""
    from sklearn.model_selection import GroupShuffleSplit

    index = np.arange(len(groups))
    rest, test = next(GroupShuffleSplit(1, test_size=test_size, random_state=random_state).split(index, groups=groups))
    val_fraction = val_size / (1.0 - test_size)
    train, val = next(GroupShuffleSplit(1, test_size=val_fraction, random_state=random_state)
                      .split(rest, groups=groups[rest]))
    return {"train": rest[train], "val": rest[val], "test": test}


def split_stratified(y: np.ndarray, val_size: float, test_size: float, random_state: int) -> dict[str, np.ndarray]:
    """Images drawn into test, validation and train, each with the classes' proportions."""
    index = np.arange(len(y))
    try:
        rest, test = train_test_split(index, test_size=test_size, random_state=random_state, stratify=y)
        train, val = train_test_split(rest, test_size=val_size / (1.0 - test_size), random_state=random_state,
                                      stratify=y[rest])
    except ValueError as e:  # a class too small to appear in every split
        counts = dict(zip(*np.unique(y, return_counts=True)))
        raise ValueError(f"cannot stratify {len(y)} images into train/validation/test ({e}); images per class: "
                         f"{counts}. Merge small age groups (face_age.age_groups) or add images") from None
    return {"train": train, "val": val, "test": test}
