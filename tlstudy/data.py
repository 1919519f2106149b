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


def stratified_part(part: Arrays, examples_per_class: int | None, seed: int = 0) -> Arrays:
    """A fixed stratified subset: up to ``examples_per_class`` of each class (all of a smaller
    class), drawn with ``seed``, in their original order; ``None`` returns ``part`` itself."""
    if examples_per_class is None:
        return part
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(members, size=min(examples_per_class, len(members)), replace=False)
              for members in (np.flatnonzero(part.y == label) for label in np.unique(part.y))]
    index = np.sort(np.concatenate(chosen))
    return Arrays(part.x[index], part.y[index])
