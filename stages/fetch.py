"""Stage fetch: the task's raw data into data/raw/.

Fashion-MNIST: its four idx files, verified by MD5. Face-age and image folders: the user's folder
stays where it is; fetch checks it and writes a manifest of its files (path, size, SHA-256 of the
content), so that DVC re-runs preprocessing when the folder changes, even a file replaced with its
size and modification time kept (``cp -p``, ``rsync -a``), and skips it when it does not.

A weights file named in ``transfer.weights_file`` is listed the same way, by its SHA-256, in its own
small output: the pretrain stage depends on it, so new weights under the same name re-run pretraining.
"""

import argparse
import logging
import sys
from pathlib import Path

from tlstudy import faces, imagefolder
from tlstudy.fsutil import atomic_dir, sha256_of, write_json
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


def fetch_folder(params: dict, out: Path) -> None:
    root = (params.get("image_folder") or {}).get("root")
    if not root:
        raise imagefolder.ImageFolderError("data.task=image_folder needs image_folder.root, the folder's location "
                                           f"(-S image_folder.root=/path/to/images).\n{imagefolder.LAYOUT}")
    entries = imagefolder.list_folder(Path(root).expanduser())
    with atomic_dir(out) as tmp:
        faces.write_manifest(entries, tmp)
    log.info("image_folder: %d files listed from %s", len(entries), root)


def already_verified(dataset: IdxDataset, out: Path) -> bool:
    """``out`` holds the dataset's files with their official content (MD5 of each, ~0.1 s in all):
    leave them untouched, so that a repro with nothing changed stays a no-op for DVC too."""
    return all((out / f.name).is_file() and md5_of(out / f.name) == f.md5 for f in dataset.files)


def list_weights(transfer: dict, out: Path) -> None:
    """The transfer weights file's identity (path and SHA-256), or that there is none; ImageNet's
    official file, downloaded by pretrain, is checked by Keras against its own hash."""
    weights_file = transfer.get("weights_file")
    entry = {"source": transfer["source"], "weights_file": weights_file}
    if weights_file and transfer["source"] in ("imagenet", "path"):
        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise DatasetError(f"transfer.weights_file {weights_file!r} is not a file; give the path of a Keras "
                               "weights file of ResNet50 without its top (or null, for imagenet's download)")
        entry["sha256"] = sha256_of(path)
    write_json(out, entry)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="directory for the raw data or its manifest")
    parser.add_argument("--weights", required=True, help="JSON naming the transfer weights file and its hash")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    try:
        list_weights(params["transfer"], Path(args.weights))
        if task_of(params) == "face_age":
            fetch_faces(params, Path(args.out))
        elif task_of(params) == "image_folder":
            fetch_folder(params, Path(args.out))
        elif already_verified(FASHION_MNIST, Path(args.out)):
            log.info("Fashion-MNIST already in %s, content verified", args.out)
        else:
            fetch_idx_dataset(FASHION_MNIST, args.out, params["data"].get("source_dir"))
            log.info("Fashion-MNIST verified in %s", args.out)
    except (DatasetError, faces.FaceDataError, imagefolder.ImageFolderError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
