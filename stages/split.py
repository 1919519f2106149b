"""Stage split: the study's validation/test split and one stratified training subset per seed.

Writes indices only: ``indices.npz`` (validation and test indices into the official test set) and
``subset_seed<N>.npy`` (training indices for seed N), so each training run depends on its own file.
"""

import argparse
import logging
from pathlib import Path

import numpy as np

from tlstudy.data import subset_file
from tlstudy.fsutil import atomic_dir
from tlstudy.params import load_params, setup_logging
from tlstudy.splits import parse_examples_per_class, split_test_in_half, stratified_subset

log = logging.getLogger("split")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processed", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup_logging()
    params = load_params()

    per_class = parse_examples_per_class(params["data"]["examples_per_class"])
    with np.load(args.processed) as d:
        y_train, y_test = d["y_train"], d["y_test"]
    index = np.arange(len(y_test))
    (val_idx, _), (test_idx, _) = split_test_in_half(
        index, y_test, params["split"]["test_size"], params["split"]["random_state"])

    with atomic_dir(Path(args.out)) as tmp:
        np.savez(tmp / "indices.npz", val=val_idx, test=test_idx)
        for seed in params["train"]["seeds"]:
            subset = stratified_subset(y_train, per_class, seed)
            np.save(subset_file(tmp, seed), subset)
            log.info("seed %s: %d training examples", seed, len(subset))
    log.info("validation %d, test %d", len(val_idx), len(test_idx))


if __name__ == "__main__":
    main()
