"""Fashion-MNIST as an image folder: a known answer for the image-folder task.

    python -m tlstudy.export_folder OUT [--raw data/raw] [--per-class N]

writes ``OUT/train|val|test/<label>-<class>/<row>.png``: one grayscale PNG per image, in the study's
split (the official training images; the official test images halved into validation and test with
``split.test_size`` and ``split.random_state`` from params.yaml). ``<row>`` is the image's row in the
idx path's processed array (training images first, then test images), so each file can be matched
with its idx counterpart. Class folders carry the label first, so that their sorted order (the
image-folder task's labels) is Fashion-MNIST's label order. ``--per-class N`` keeps the first N
images of each class in each split, for a quick check.

Running the pipeline with ``data.task=image_folder`` and ``image_folder.root=OUT``,
``image_folder.image_size=28``, gives the idx path's arrays, row for row
(tests/test_image_folder.py holds this, with bit-identical MLP predictions).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image

from tlstudy.fsutil import atomic_dir
from tlstudy.idx import FASHION_MNIST, IdxDataset, load_idx_dataset
from tlstudy.params import load_params, setup_logging
from tlstudy.splits import split_test_in_half

log = logging.getLogger("export_folder")


def folder_name(label: int, name: str) -> str:
    """``0-T-shirt_top``: the label first (sorted order = label order, for up to 10 classes), then the
    class name with what a file system refuses replaced."""
    return f"{label}-{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}"


def study_split(y_test: np.ndarray, n_train: int, test_size: float, random_state: int) -> dict[str, np.ndarray]:
    """Rows of the processed array (train first, then test) per split, as the split stage draws them."""
    pool = np.arange(n_train, n_train + len(y_test))
    (val, _), (test, _) = split_test_in_half(pool, y_test, test_size, random_state)
    return {"train": np.arange(n_train), "val": val, "test": test}


def export(raw: Path, out: Path, test_size: float, random_state: int, per_class: int | None = None,
           dataset: IdxDataset = FASHION_MNIST) -> dict[str, int]:
    """Write the folder (in one rename: nothing half-written); returns the images per split."""
    if len(dataset.class_names) > 10:
        raise ValueError(f"{dataset.name} has {len(dataset.class_names)} classes; folder names sort in label "
                         "order for up to 10")
    x_train, y_train, x_test, y_test = load_idx_dataset(dataset, Path(raw))
    x, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
    folders = [folder_name(label, name) for label, name in enumerate(dataset.class_names)]
    digits = len(str(len(y) - 1))
    written = {}
    with atomic_dir(Path(out)) as tmp:
        for split, rows in study_split(y_test, len(y_train), test_size, random_state).items():
            if per_class is not None:
                rows = np.concatenate([rows[y[rows] == label][:per_class] for label in range(len(folders))])
            for folder in folders:
                (tmp / split / folder).mkdir(parents=True)
            for row in rows:
                Image.fromarray(x[row]).save(tmp / split / folders[y[row]] / f"{row:0{digits}d}.png")
            written[split] = int(len(rows))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="the folder to write (replaced if it exists)")
    parser.add_argument("--raw", default="data/raw", help="the four idx files (the fetch stage's output)")
    parser.add_argument("--per-class", type=int, default=None, help="the first N images per class and split")
    args = parser.parse_args()
    setup_logging()
    split = load_params()["split"]
    written = export(Path(args.raw), Path(args.out), split["test_size"], split["random_state"], args.per_class)
    log.info("wrote %s to %s", ", ".join(f"{n} {s}" for s, n in written.items()), args.out)


if __name__ == "__main__":
    main()
