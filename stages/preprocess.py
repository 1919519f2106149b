"""Stage preprocess: decode and scale to [0, 1]; the study's exploratory outputs."""

import argparse
import logging
from pathlib import Path

import numpy as np

from tlstudy import explore
from tlstudy.fsutil import atomic_file, save_npz, write_json
from tlstudy.idx import FASHION_MNIST, load_idx_dataset
from tlstudy.params import setup_logging

log = logging.getLogger("preprocess")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True, help="the processed .npz")
    parser.add_argument("--eda", required=True, help="directory for exploratory plots and tables")
    parser.add_argument("--metrics", required=True, help="JSON summary of the data")
    args = parser.parse_args()
    setup_logging()

    x_train, y_train, x_test, y_test = load_idx_dataset(FASHION_MNIST, Path(args.raw))
    class_names = list(FASHION_MNIST.class_names)
    eda = Path(args.eda)

    stats = explore.pixel_statistics(x_train)
    with atomic_file(eda / "pixel_statistics.csv") as f:
        stats.to_csv(f, index_label="pixel")
    counts = explore.label_counts(y_train, class_names)
    with atomic_file(eda / "label_counts.csv") as f:
        counts.to_csv(f, index=False)
    explore.plot_label_counts(counts, eda / "label_counts.png", "Fashion-MNIST training images per class")
    explore.plot_sample_grid(x_train, y_train, class_names, eda / "samples.png")

    summary = {
        "train_images": int(len(x_train)),
        "test_images": int(len(x_test)),
        "image_shape": list(x_train.shape[1:]),
        "null_count": int(explore.pixel_frame(x_train).isnull().sum().sum()),
        "pixel_mean": float(x_train.mean() / 255.0),
        "pixel_std": float(x_train.std() / 255.0),
    }
    write_json(Path(args.metrics), summary)
    log.info("data summary: %s", summary)

    save_npz(Path(args.out), x_train=explore.scale(x_train), y_train=y_train, x_test=explore.scale(x_test),
             y_test=y_test, class_names=np.array(class_names))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
