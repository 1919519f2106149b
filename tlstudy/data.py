"""The processed dataset and its splits, as the train and evaluate stages read them.

``preprocess`` writes one ``.npz`` with the scaled images; ``split`` writes only indices
(validation and test indices into the official test set, and one training subset per seed),
so no image is stored twice and adding a seed writes one small file.
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
    """The seed's training subset (the whole training set if ``seed`` is None), validation and test."""
    with np.load(processed) as d:
        x_train, y_train, x_test, y_test = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
        class_names = [str(c) for c in d["class_names"]]
    with np.load(Path(split_dir) / "indices.npz") as idx:
        val_idx, test_idx = idx["val"], idx["test"]
    if seed is not None:
        train_idx = np.load(subset_file(split_dir, seed))
        x_train, y_train = x_train[train_idx], y_train[train_idx]
    return Splits(
        train=Arrays(x_train, y_train),
        val=Arrays(x_test[val_idx], y_test[val_idx]),
        test=Arrays(x_test[test_idx], y_test[test_idx]),
        class_names=class_names,
    )
