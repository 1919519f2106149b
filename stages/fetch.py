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
from tlstudy.idx import FASHION_MNIST, DatasetError, fetch_idx_dataset
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="directory for the raw data or its manifest")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    try:
        if task_of(params) == "face_age":
            fetch_faces(params, Path(args.out))
        else:
            fetch_idx_dataset(FASHION_MNIST, args.out, params["data"].get("source_dir"))
            log.info("Fashion-MNIST verified in %s", args.out)
    except (DatasetError, faces.FaceDataError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
