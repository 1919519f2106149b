"""Stage fetch: Fashion-MNIST's four idx files, verified, into data/raw/."""

import argparse
import logging
import sys

from tlstudy.idx import FASHION_MNIST, DatasetError, fetch_idx_dataset
from tlstudy.params import load_params, setup_logging

log = logging.getLogger("fetch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="directory for the verified idx files")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    try:
        fetch_idx_dataset(FASHION_MNIST, args.out, params["data"].get("source_dir"))
    except DatasetError as e:
        log.error("%s", e)
        return 1
    log.info("Fashion-MNIST verified in %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
