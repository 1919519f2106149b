"""Stage preprocess: the task's images as one array, with labels, identities and exploratory outputs.

Writes ``x`` (Fashion-MNIST: float32 in [0, 1], the study's scaling; face-age: uint8 RGB, scaled
inside the models), ``y``, ``class_names``, ``group`` (the identity splits must not divide; empty
where unknown) and ``preset`` (0 and 1 for a dataset's official train and test images, -1 where it
has none). Face-age files that cannot be used are listed in ``skipped.csv`` with the reason.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tlstudy import explore, faces
from tlstudy.fsutil import atomic_file, save_npz, write_json
from tlstudy.idx import FASHION_MNIST, load_idx_dataset, scale
from tlstudy.params import load_params, setup_logging, task_of

log = logging.getLogger("preprocess")


def fashion_mnist(raw: Path, eda: Path) -> tuple[dict, dict]:
    x_train, y_train, x_test, y_test = load_idx_dataset(FASHION_MNIST, raw)
    class_names = list(FASHION_MNIST.class_names)
    stats = explore.pixel_statistics(x_train)
    with atomic_file(eda / "pixel_statistics.csv") as f:
        stats.to_csv(f, index_label="pixel")
    write_counts(explore.label_counts(y_train, class_names), eda, "Fashion-MNIST training images per class")
    explore.plot_sample_grid(x_train, y_train, class_names, eda / "figures" / "samples.png")
    summary = {
        "train_images": int(len(x_train)),
        "test_images": int(len(x_test)),
        "image_shape": list(x_train.shape[1:]),
        "null_count": int(explore.pixel_frame(x_train).isnull().sum().sum()),
        "pixel_mean": float(x_train.mean() / 255.0),
        "pixel_std": float(x_train.std() / 255.0),
    }
    n_train, n_test = len(y_train), len(y_test)
    arrays = {
        "x": np.concatenate([scale(x_train), scale(x_test)]),
        "y": np.concatenate([y_train, y_test]),
        "class_names": np.array(class_names),
        "group": np.full(n_train + n_test, ""),
        "preset": np.concatenate([np.zeros(n_train, np.int8), np.ones(n_test, np.int8)]),
    }
    write_skipped([], eda)
    return arrays, summary


def face_age(params: dict, raw: Path, eda: Path) -> tuple[dict, dict]:
    face = params["face_age"]
    groups = faces.AgeGroups.from_param(face["age_groups"])
    root = Path(face["root"]).expanduser()
    data = faces.prepare(root, face["format"], groups, int(face["image_size"]), face.get("metadata"),
                         bool(face.get("strict")), faces.read_manifest(raw))
    y = np.array([r.label for r in data.kept], np.int64)
    ages = np.array([-1 if r.age is None else r.age for r in data.kept], np.int64)
    with atomic_file(eda / "pixel_statistics.csv") as f:
        explore.channel_statistics(data.x).to_csv(f, index_label="channel")
    write_counts(explore.label_counts(y, groups.names), eda, "Images per age group")
    first = explore.first_of_each_class(y)
    explore.plot_sample_grid(data.x[first], y[first], groups.names, eda / "figures" / "samples.png",
                             count=len(first))
    known = ages[ages >= 0]  # the metadata CSV's labels come without ages only if names do not parse
    if len(known):
        explore.plot_age_histogram(known, list(groups.bounds), eda / "figures" / "ages.png")
    write_skipped(data.skipped, eda)
    summary = {
        "images": int(len(y)),
        "image_shape": list(data.x.shape[1:]),
        "identities": len({r.identity for r in data.kept if r.identity}),
        "skipped": {problem: sum(r.problem == problem for r in data.skipped) for problem in faces.PROBLEMS},
        "per_group": dict(zip(groups.names, np.bincount(y, minlength=len(groups.names)).tolist())),
    }
    arrays = {
        "x": data.x,
        "y": y,
        "class_names": np.array(groups.names),
        "group": np.array([r.identity for r in data.kept]),
        "preset": np.full(len(y), -1, np.int8),
        "age": ages,
        "file": np.array([r.path for r in data.kept]),
    }
    return arrays, summary


def write_counts(counts: pd.DataFrame, eda: Path, title: str) -> None:
    with atomic_file(eda / "label_counts.csv") as f:
        counts.to_csv(f, index=False)
    explore.plot_label_counts(counts, eda / "figures" / "label_counts.png", title)


def write_skipped(skipped: list, eda: Path) -> None:
    frame = pd.DataFrame([(r.path, r.problem, faces.PROBLEMS[r.problem]) for r in skipped],
                         columns=["path", "problem", "reason"])
    with atomic_file(eda / "skipped.csv") as f:
        frame.to_csv(f, index=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True, help="the processed .npz")
    parser.add_argument("--eda", required=True, help="directory for exploratory plots and tables")
    parser.add_argument("--metrics", required=True, help="JSON summary of the data")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    eda = Path(args.eda)
    try:
        if task_of(params) == "face_age":
            arrays, summary = face_age(params, Path(args.raw), eda)
        else:
            arrays, summary = fashion_mnist(Path(args.raw), eda)
    except faces.FaceDataError as e:
        log.error("%s", e)
        return 1
    write_json(Path(args.metrics), summary)
    log.info("data summary: %s", summary)
    save_npz(Path(args.out), **arrays)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
