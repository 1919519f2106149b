"""An image folder: one subfolder per class, the layout Keras' ``image_dataset_from_directory`` and
torchvision's ``ImageFolder`` read (``root/<class>/**/<image>``), or ``root/train|val|test/<class>/...``,
whose split is then used as given.

- ``list_folder`` walks the root (links followed, each folder once) and returns the manifest the
  fetch stage writes: every file's path, size and content hash. A root that cannot make a dataset
  (empty, one class, a split folder missing) is an error here, before anything is written.
- ``load`` decodes the files the manifest lists, once, at the models' size, into one float32 array
  allocated up front: one channel when every image is grayscale, else RGB. Every file left out is
  listed with its reason (``PROBLEMS``). Exact copies (same bytes) across the given splits are
  counted, and dropped from training unless ``image_folder.drop_duplicates`` is false.
- ``split_stratified_keeping_copies``: without given splits, images are drawn stratified by class,
  and the copies of one image land in one split.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tlstudy import faces

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")  # given splits; their index is the processed array's ``preset``
# Files that operating systems and tools write into folders; never images, and they change on their
# own (Finder rewrites .DS_Store when a folder is viewed), so the manifest lists them without a hash.
SYSTEM_FILES = ("thumbs.db", "ehthumbs.db", "desktop.ini")
PROBLEMS = {
    "system_file": "a file the system or a tool writes (.DS_Store, Thumbs.db, desktop.ini, a hidden file)",
    "hidden_folder": "a hidden folder (.git, .ipynb_checkpoints, ...): not read",
    "linked_folder_seen": "a link to a folder already read (a symlink loop, or a second link to it): not read twice",
    "unreadable_folder": "a folder that cannot be listed (permissions): its files are not read",
    "outside_class_folder": "not inside a class folder (root/<class>/... or root/<split>/<class>/...)",
    **faces.DECODE_PROBLEMS,
    "copy_of_evaluation_image": "the same bytes as a validation or test image, dropped from training "
                                "(image_folder.drop_duplicates)",
}
LAYOUT = """image_folder.root holds one folder per class, images at any depth inside it:
  root/cat/0001.jpg, root/dog/0001.png, ...   (split with split.image_folder's sizes, stratified by class)
or the three splits, each with the same class folders, used as given:
  root/train/cat/0001.jpg, root/val/cat/..., root/test/cat/..."""


class ImageFolderError(ValueError):
    """An image folder that cannot be used as it stands; the message says what to fix."""


@dataclass(frozen=True)
class ImageRecord:
    path: str  # relative to the root, "/"-separated
    split: str = ""  # train, val or test where the folder gives them; "" otherwise
    label: int = -1
    sha256: str = ""
    problem: str = ""  # a key of PROBLEMS; "" for a file to decode


def _is_system_file(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def list_folder(root: Path) -> list[tuple[str, int, str]]:
    """(relative path, size, SHA-256) of every file under ``root``, sorted, for the manifest; a folder
    not read as ``(path/, -1, why)``, ``why`` a key of ``PROBLEMS``. Raises ``ImageFolderError`` for a
    root that cannot make a dataset."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise ImageFolderError(f"image_folder.root {str(root)!r} {what}; give the folder of class folders "
                               f"(-S image_folder.root=/path/to/images).\n{LAYOUT}")
    entries, seen = [], {os.path.realpath(root)}

    def not_read(path, why: str) -> None:
        entries.append((f"{Path(path).relative_to(root).as_posix()}/", -1, why))

    def unreadable(error: OSError) -> None:
        if Path(error.filename) == root:
            raise ImageFolderError(f"image_folder.root {str(root)!r} cannot be listed: {error.strerror}") from None
        not_read(error.filename, "unreadable_folder")

    for directory, folders, files in os.walk(root, onerror=unreadable, followlinks=True):
        here = Path(directory)
        for name in sorted(folders):  # decide which subfolders os.walk enters
            real = os.path.realpath(here / name)
            if name.startswith(".") or real in seen:
                not_read(here / name, "hidden_folder" if name.startswith(".") else "linked_folder_seen")
                folders.remove(name)
            else:
                seen.add(real)
        for name in files:
            if _is_system_file(name):
                entries.append(((here / name).relative_to(root).as_posix(), -1, ""))
            else:
                entries.append(faces.file_entry(here / name, root))
    entries.sort()
    parse(entries, str(root))  # the structural errors, before fetch writes anything
    empty = [f"{p}/" for p in _class_folders(root) if not any(e[0].startswith(f"{p}/") for e in entries)]
    if empty:
        raise ImageFolderError(f"class folder(s) with no file at all under {root}: {', '.join(empty)}; "
                               "add images or remove the folder")
    return entries


def _class_folders(root: Path) -> list[str]:
    top = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if {p.name for p in top} >= set(SPLITS):
        return [f"{s}/{p.name}" for s in SPLITS for p in sorted((root / s).iterdir())
                if p.is_dir() and not p.name.startswith(".")]
    return [p.name for p in top]


def parse(entries: list[tuple[str, int, str]], root: str = "image_folder.root") -> tuple[list[ImageRecord], list[str]]:
    """One record per manifest entry (its class, split and hash, or the problem that leaves it out),
    and the class names in label order (sorted, as Keras and torchvision number them)."""
    tops = {path.split("/")[0] for path, _, _ in entries if "/" in path.rstrip("/") and not path.endswith("/")}
    given = tops & set(SPLITS)
    if given and given != set(SPLITS) and not tops - set(SPLITS):
        missing = ", ".join(f"{s}/" for s in SPLITS if s not in given)
        present = ", ".join(f"{s}/" for s in SPLITS if s in given)
        raise ImageFolderError(f"image_folder.root {root!r} has {present} but no {missing}: give all three "
                               f"splits, each with the class folders, or none.\n{LAYOUT}")
    given = given == set(SPLITS)
    records, classes = [], defaultdict(set)  # class -> the splits it appears in
    for path, _, digest in entries:
        parts = path.rstrip("/").split("/")
        if path.endswith("/"):  # a folder not read; why, in the hash's column
            records.append(ImageRecord(path, problem=digest if digest in PROBLEMS else "unreadable_folder"))
            continue
        split, rest = (parts[0], parts[1:]) if given else ("", parts)
        if (given and split not in SPLITS) or len(rest) < 2:
            records.append(ImageRecord(path, split, problem="outside_class_folder"))
            continue
        classes[rest[0]].add(split)
        problem = "system_file" if _is_system_file(parts[-1]) else ""
        records.append(ImageRecord(path, split, sha256=digest, problem=problem))
    names = sorted(c for c, splits in classes.items() if not given or "train" in splits)
    if given and len(names) < len(classes):
        extra = sorted(set(classes) - set(names))
        raise ImageFolderError(f"class folder(s) {', '.join(extra)} appear under val/ or test/ but not under "
                               f"train/: a class the models never train on cannot be scored; add training "
                               "images or remove them")
    if len(names) < 2:
        raise ImageFolderError(_too_few_classes(names, entries, given, root))
    labels = {name: i for i, name in enumerate(names)}
    return [r if r.problem else ImageRecord(r.path, r.split, labels[r.path.split("/")[1 if given else 0]], r.sha256)
            for r in records], names


def _too_few_classes(names: list[str], entries, given: bool, root: str) -> str:
    if not entries:
        return f"image_folder.root {root!r} holds no files.\n{LAYOUT}"
    if not names:
        return f"image_folder.root {root!r} holds no class folder (only loose files, or hidden ones).\n{LAYOUT}"
    prefix = f"{'train/' if given else ''}{names[0]}/"
    below = {p[len(prefix):].split("/")[0] for p, _, _ in entries if p.startswith(prefix) and
             "/" in p[len(prefix):]}
    hint = (f" {prefix} holds the folders {', '.join(sorted(below)[:5])}: if those are the classes, the class "
            f"folders are nested one level too deep; set image_folder.root to {root}/{prefix.rstrip('/')}."
            if len(below) >= 2 else "")
    return (f"image_folder.root {root!r} holds one class folder, {prefix}; a classifier needs two or more.{hint}"
            f"\n{LAYOUT}")


@dataclass
class FolderData:
    x: np.ndarray  # float32 in [0, 1]: (n, size, size) if every image is grayscale, else (n, size, size, 3)
    kept: list[ImageRecord]  # one per row of x
    skipped: list[ImageRecord]  # every file left out, with its problem
    class_names: list[str]
    given_splits: bool
    duplicates: dict  # counts of exact copies, for metrics/data.json

    @property
    def grayscale(self) -> bool:
        return self.x.ndim == 3


def _mode(path: Path) -> str:
    """The image's mode from its header (no decoding); "" where it cannot be opened (decoding says why)."""
    try:
        with Image.open(path) as image:
            return image.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return ""


def load(root: Path, entries: list[tuple[str, int, str]], size: int, drop_duplicates: bool = True,
         workers: int | None = None) -> FolderData:
    """Decode the manifest's images (see the module's docstring). A class left with no decodable image
    (in train/, where the folder gives splits) is an error that lists why its files were left out."""
    root = Path(root)
    records, names = parse(entries, str(root))
    todo = [r for r in records if not r.problem]
    modes = set(faces.map_in_threads(lambda i: _mode(root / todo[i].path), len(todo), workers)) - {""}
    grayscale = bool(modes) and modes <= set(faces.GRAYSCALE_MODES)
    shape = (size, size) if grayscale else (size, size, 3)
    paths = [os.path.join(root, r.path) for r in todo]  # strings: a Path object weighs more than a small image
    x, problems = faces.decode_rows(paths, np.empty((len(todo), *shape), np.float32), workers)
    kept = [r for r, problem in zip(todo, problems) if not problem]
    skipped = [r for r in records if r.problem]
    skipped += [ImageRecord(r.path, r.split, r.label, r.sha256, problem)
                for r, problem in zip(todo, problems) if problem]
    x, kept, dropped, duplicates = _copies(x, kept, drop_duplicates)
    skipped += dropped
    log.info("%d images decoded at %dx%d, %s", len(kept), size, size,
             "one channel: every image is grayscale" if grayscale else "RGB: some images have colour")
    given = any(r.split for r in records)
    trained = np.bincount([r.label for r in kept if r.split in ("", "train")], minlength=len(names))
    if (trained == 0).any():
        empty = names[int(np.argmin(trained))]
        why = sorted({PROBLEMS[r.problem] for r in skipped if "/" in r.path and r.split in ("", "train")
                      and r.path.split("/")[1 if given else 0] == empty})
        raise ImageFolderError(f"class {empty!r} has no usable {'training ' if given else ''}image under {root}; "
                               f"its files were left out because: {'; '.join(why) or 'it has none'}. "
                               "Add readable images or remove the folder")
    return FolderData(x, kept, sorted(skipped, key=lambda r: r.path), names, given, duplicates)


def _copies(x: np.ndarray, kept: list[ImageRecord], drop: bool):
    """Count exact copies (same SHA-256); where the folder gives splits, drop (with ``drop``) each
    training image whose bytes are also a validation or test image: scoring a model on an image it
    trained on measures memory, not generalisation. Copies within one split are only counted."""
    by_hash = defaultdict(list)
    for i, r in enumerate(kept):
        if r.sha256:
            by_hash[r.sha256].append(i)
    groups = [rows for rows in by_hash.values() if len(rows) > 1]
    across = [rows for rows in groups if len({kept[i].split for i in rows}) > 1]
    leaking = [i for rows in across if {kept[j].split for j in rows} - {"train"} for i in rows
               if kept[i].split == "train"]
    counts = {"images_with_a_copy": sum(map(len, groups)), "copies_across_splits": len(across),
              "training_images_copying_val_or_test": len(leaking),
              "copies_in_two_classes": sum(len({kept[i].label for i in rows}) > 1 for rows in groups),
              "dropped_from_training": len(leaking) if drop else 0}
    if leaking:
        log.warning("%d training image(s) have the same bytes as a validation or test image%s", len(leaking),
                    "; dropped from training (image_folder.drop_duplicates)" if drop else
                    ", and image_folder.drop_duplicates is false: they stay, and the test scores measure them")
    if not (drop and leaking):
        return x, kept, [], counts
    keep = np.ones(len(kept), bool)
    keep[leaking] = False
    for row, i in enumerate(np.flatnonzero(keep)):  # close up in place, as decoding did
        if row != i:
            x[row] = x[i]
    dropped = [ImageRecord(r.path, r.split, r.label, r.sha256, "copy_of_evaluation_image")
               for r, k in zip(kept, keep) if not k]
    return x[:int(keep.sum())], [r for r, k in zip(kept, keep) if k], dropped, counts


def copy_groups(kept: list[ImageRecord]) -> np.ndarray:
    """Per image, what the split must keep together: "sha256:<hash>" for an image with exact copies, ""
    for the others (the processed array's ``group``)."""
    counts = defaultdict(int)
    for r in kept:
        counts[r.sha256] += 1
    return np.array([f"sha256:{r.sha256}" if r.sha256 and counts[r.sha256] > 1 else "" for r in kept], dtype=str)


def split_stratified_keeping_copies(y: np.ndarray, group: np.ndarray, val_size: float, test_size: float,
                                    random_state: int) -> dict[str, np.ndarray]:
    """``split_stratified`` over one image of each set of copies (the first), the others following it:
    no image is in two splits under two names. Without copies, the same images per split as
    ``split_stratified``; each split's indices in ascending order."""
    from tlstudy.splits import split_stratified  # here: fetch imports this module, and scikit-learn costs it ~1 s

    y, group = np.asarray(y), np.asarray(group, dtype=str)
    first, representative = {}, np.arange(len(y))
    for i, g in enumerate(group):
        if g:
            representative[i] = first.setdefault(g, i)
    heads = np.flatnonzero(representative == np.arange(len(y)))
    try:
        parts = split_stratified(y[heads], val_size, test_size, random_state)
    except ValueError:
        counts = dict(zip(*(v.tolist() for v in np.unique(y[heads], return_counts=True))))
        raise ImageFolderError(f"cannot draw train, validation and test from {len(heads)} images with every class "
                               f"in each (split.image_folder.val_size={val_size}, test_size={test_size}); images "
                               f"per class label: {counts}. Add images to the small classes, or give train/ val/ "
                               "test/ folders") from None
    where = np.empty(len(y), np.int64)
    for code, name in enumerate(SPLITS):
        where[heads[parts[name]]] = code
    where = where[representative]
    return {name: np.flatnonzero(where == code) for code, name in enumerate(SPLITS)}
