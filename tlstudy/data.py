"""The processed dataset and its splits, as the train and evaluate stages read them.

``preprocess`` writes one ``.npz`` with every image (``x``) and label (``y``); ``split`` writes only
indices into them (train, validation and test, and one training subset per seed), so no image is
stored twice and adding a seed writes one small file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Arrays:
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    train: Arrays
    val: Arrays
    test: Arrays
    class_names: list[str]


def subset_file(split_dir: Path, seed: int) -> Path:
    return Path(split_dir) / f"subset_seed{seed}.npy"


def load_splits(processed: Path, split_dir: Path, seed: int | None = None) -> Splits:
    """The seed's training subset (the whole training split if ``seed`` is None), validation and test."""
    with np.load(Path(split_dir) / "indices.npz") as idx:
        train_idx, val_idx, test_idx = idx["train"], idx["val"], idx["test"]
    if seed is not None:
        train_idx = np.load(subset_file(split_dir, seed))
    with np.load(processed) as d:
        x, y = d["x"], d["y"]
        class_names = [str(c) for c in d["class_names"]]
    return Splits(
        train=Arrays(x[train_idx], y[train_idx]),
        val=Arrays(x[val_idx], y[val_idx]),
        test=Arrays(x[test_idx], y[test_idx]),
        class_names=class_names,
    )


def parse_examples_per_class(value) -> int | None:
    """``all`` (or null) means the whole set: None. Otherwise a positive integer."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n <= 0 or str(value).strip() != str(n):
        raise ValueError(f"examples_per_class must be a positive integer or 'all', got {value!r}")
    return n


def stratified_indices(y: np.ndarray, examples_per_class: int, seed: int, shuffle: bool) -> np.ndarray:
    """The one rule for every stratified subset: with a generator seeded by ``seed``, class by class in
    label order, ``examples_per_class`` indices drawn without replacement (every one of a smaller class).
    Returned in an order drawn next from the same generator (``shuffle``), or sorted.

    The split stage's training subsets (``tlstudy.splits.stratified_subset``) and the validation budget
    (``stratified_part``) both come from here; tests/test_splits.py pins the indices of both, since the
    committed results were trained on them."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(members, size=min(examples_per_class, len(members)), replace=False)
              for members in (np.flatnonzero(y == label) for label in np.unique(y))]
    index = np.concatenate(chosen)
    return rng.permutation(index) if shuffle else np.sort(index)


def stratified_part(part: Arrays, examples_per_class: int | None, seed: int = 0) -> Arrays:
    """A fixed stratified subset: up to ``examples_per_class`` of each class (all of a smaller
    class), drawn with ``seed``, in their original order; ``None`` returns ``part`` itself."""
    if examples_per_class is None:
        return part
    index = stratified_indices(part.y, examples_per_class, seed, shuffle=False)
    return Arrays(part.x[index], part.y[index])
