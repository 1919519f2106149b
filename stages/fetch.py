"""Stage fetch: the task's raw data into data/raw/.

Fashion-MNIST: its four idx files, verified by MD5. Face-age: the user's folder stays where it is;
fetch checks it and writes a manifest of its files (path, size, modification time), so that DVC
re-runs preprocessing when the folder changes and skips it when it does not.
"""

import argparse
import logging
import sys
from pathlib import Path

from tlstudy import faces
from tlstudy.fsutil import atomic_dir
from tlstudy.idx import FASHION_MNIST, DatasetError, IdxDataset, fetch_idx_dataset, md5_of
from tlstudy.params import load_params, setup_logging, task_of

log = logging.getLogger("fetch")


def fetch_faces(params: dict, out: Path) -> None:
    face = params["face_age"]
    if not face.get("root"):
        raise faces.FaceDataError("data.task=face_age needs face_age.root, the data's location "
                                  f"(-S face_age.root=/path/to/data).\n{faces.SOURCES}\n{faces.LAYOUTS}")
    entries = faces.list_source(Path(face["root"]).expanduser(), face["format"], face.get("metadata"))
    with atomic_dir(out) as tmp:
        faces.write_manifest(entries, tmp)
    log.info("face_age (%s): %d files listed from %s", face["format"], len(entries), face["root"])


def already_verified(dataset: IdxDataset, out: Path) -> bool:
    """``out`` holds the dataset's files with their official content (MD5 of each, ~0.1 s in all):
    leave them untouched, so that a repro with nothing changed stays a no-op for DVC too."""
    return all((out / f.name).is_file() and md5_of(out / f.name) == f.md5 for f in dataset.files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="directory for the raw data or its manifest")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    try:
        if task_of(params) == "face_age":
            fetch_faces(params, Path(args.out))
        elif already_verified(FASHION_MNIST, Path(args.out)):
            log.info("Fashion-MNIST already in %s, content verified", args.out)
        else:
            fetch_idx_dataset(FASHION_MNIST, args.out, params["data"].get("source_dir"))
            log.info("Fashion-MNIST verified in %s", args.out)
    except (DatasetError, faces.FaceDataError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
