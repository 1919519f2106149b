"""Stage split: train, validation and test, and one stratified training subset per seed.

Fashion-MNIST: the study's split, the official test images halved into validation and test.
Face-age: AI-Hub's families by number ranges (the study's split), else identities drawn at random
(a family or person never spans two splits), else images drawn with the classes' proportions.
Image folder: its train/, val/ and test/ as given, else images drawn with the classes' proportions,
the exact copies of an image kept in one split.

Writes indices into the processed arrays only: ``indices.npz`` (train, val, test) and
``subset_seed<N>.npy`` (seed N's training images), so each training run depends on its own file;
and ``summary.json``: how the split was drawn, its sizes, and each seed's images per class.
"""

import argparse
import logging
from pathlib import Path

import numpy as np

from tlstudy import faces, imagefolder
from tlstudy.data import parse_examples_per_class, subset_file
from tlstudy.fsutil import atomic_dir, save_npz, write_json
from tlstudy.params import ParamsError, load_params, setup_logging, task_of
from tlstudy.splits import (
    split_by_family_ranges,
    split_by_group,
    split_stratified,
    split_test_in_half,
    stratified_subset,
)

log = logging.getLogger("split")


def assign(y: np.ndarray, group: np.ndarray, preset: np.ndarray, params: dict) -> tuple[dict, str]:
    """Train, validation and test indices, and how they were drawn."""
    split = params["split"]
    if task_of(params) == "fashion_mnist":
        train, test_pool = np.flatnonzero(preset == 0), np.flatnonzero(preset == 1)
        (val, _), (test, _) = split_test_in_half(test_pool, y[test_pool], split["test_size"], split["random_state"])
        return {"train": train, "val": val, "test": test}, "official train; official test halved"
    if task_of(params) == "image_folder":
        if (preset >= 0).all():
            return ({name: np.flatnonzero(preset == code) for code, name in enumerate(imagefolder.SPLITS)},
                    "as the folder gives them (train/, val/, test/)")
        sizes = split["image_folder"]
        parts = imagefolder.split_stratified_keeping_copies(y, group, sizes["val_size"], sizes["test_size"],
                                                           split["random_state"])
        return parts, "by image, stratified by class, at random (exact copies kept in one split)"
    face = split["face_age"]
    if params["face_age"]["format"] == "aihub" and face.get("families"):
        faces.check_family_ranges(face["families"])
        return split_by_family_ranges(group, face["families"]), f"by family number: {face['families']}"
    if (group != "").any():  # an image without an identity is a group of its own
        parts = split_by_group(faces.identity_groups(group), face["val_size"], face["test_size"],
                               split["random_state"])
        alone = int((group == "").sum())
        return parts, "by identity, at random" + (f" ({alone} images without one, each its own)" if alone else "")
    parts = split_stratified(y, face["val_size"], face["test_size"], split["random_state"])
    return parts, "by image, stratified by age group, at random (this format has no identities)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processed", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()

    per_class = parse_examples_per_class(params["examples_per_class"])
    with np.load(args.processed) as d:
        y, group, preset = d["y"], d["group"], d["preset"]
        class_names = [str(c) for c in d["class_names"]]
    try:
        parts, how = assign(y, group, preset, params)
    except (faces.FaceDataError, imagefolder.ImageFolderError) as e:
        raise SystemExit(f"split: {e}") from None
    for name, index in parts.items():
        if not len(index):
            raise SystemExit(f"split: the {name} split is empty ({how}); check the split params in params.yaml")

    counts = np.bincount(y[parts["train"]], minlength=len(class_names))
    if per_class is not None and counts.min() < per_class:
        scarce = int(counts.argmin())
        raise ParamsError(f"params.yaml: examples_per_class is {per_class}, but class {class_names[scarce]!r} has "
                         f"{counts[scarce]} training images ({how}); use at most {counts.min()}, or 'all'")

    with atomic_dir(Path(args.out)) as tmp:
        save_npz(tmp / "indices.npz", **parts)
        trained = {}
        for seed in params["train"]["seeds"]:
            subset = parts["train"][stratified_subset(y[parts["train"]], per_class, seed)]
            np.save(subset_file(tmp, seed), subset)
            trained[str(seed)] = np.bincount(y[subset], minlength=len(class_names)).tolist()
            log.info("seed %s: %d training examples", seed, len(subset))
        write_json(tmp / "summary.json", {"how": how, **{k: int(len(v)) for k, v in parts.items()},
                                          "class_names": class_names, "train_per_class_by_seed": trained})
    log.info("split %s: train %d, validation %d, test %d", how, *(len(parts[k]) for k in ("train", "val", "test")))


if __name__ == "__main__":
    main()
