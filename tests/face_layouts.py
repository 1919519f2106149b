"""Small synthetic face-age datasets in the real layouts, with the awkward files real data has.

    python -m tests.face_layouts <dir> [aihub|utkface|csv ...]

writes one folder per format (the csv format: ``<dir>/csv/labels.csv``) and prints the paths to pass
as ``face_age.root``. Each image is a flat colour per age group with noise, so the models have
something to learn; the awkward files are named in ``AWKWARD``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tlstudy.faces import STUDY_AGE_GROUPS

# An age in the middle of each of the study's groups.
AGES = [(low + high) // 2 for low, high in STUDY_AGE_GROUPS]
MEMBERS = ["GF", "GM", "F", "M", "S", "D", "S2", "D2"]
# AI-Hub families: inside the study's train (1-299), validation (801-850) and test (851-900) ranges,
# and one in none of them (left out by the default split).
AIHUB_FAMILIES = {"train": [1, 2, 3, 4, 5, 6], "val": [801, 802], "test": [851, 852], "none": [500]}


@dataclass
class Layout:
    root: Path  # what face_age.root gets
    usable: dict[str, int] = field(default_factory=dict)  # relative path -> age-group label
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> problem
    modes: dict[str, str] = field(default_factory=dict)  # relative path -> the mode it was saved in


def colour(label: int) -> np.ndarray:
    return np.array([(37 * label) % 256, (91 * label + 40) % 256, (153 * label + 80) % 256])


def _pixels(label: int, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    noise = rng.integers(-20, 21, (size, size, 3))
    return np.clip(colour(label) + noise, 0, 255).astype(np.uint8)


def _save(path: Path, array: np.ndarray, mode: str = "RGB") -> None:
    """Save ``array`` (RGB) converted to ``mode``, the way real collections mix modes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if mode == "P+transparency":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
        image.info["transparency"] = 0
        image.save(path.with_suffix(".png"), transparency=0)
        return
    if mode == "I;16":
        Image.fromarray(array[..., 0].astype(np.uint16) * 256).save(path)
        return
    image.convert(mode).save(path)


# Modes for the usable images, in turn: the ones real data has.
MODES = [("RGB", ".jpg"), ("L", ".jpg"), ("CMYK", ".jpg"), ("RGBA", ".png"), ("LA", ".png"),
         ("P+transparency", ".png"), ("I;16", ".png"), ("RGB", ".png")]


def _write_images(root: Path, names_and_labels, rng) -> tuple[dict[str, int], dict[str, str]]:
    usable, modes = {}, {}
    for i, (rel, label) in enumerate(names_and_labels):
        mode, suffix = MODES[i % len(MODES)]
        path = root / f"{rel}{suffix}"
        _save(path, _pixels(label, rng), mode)
        usable[path.relative_to(root).as_posix()] = label
        modes[path.relative_to(root).as_posix()] = mode
    return usable, modes


def _write_awkward(root: Path, folder: str, good_name: str, bad_age_name: str) -> dict[str, str]:
    """A truncated JPEG and a text file posing as one (both with good names), a name that does not
    parse, and an age in no group."""
    rng = np.random.default_rng(1)
    base = root / folder
    base.mkdir(parents=True, exist_ok=True)
    full = base / "full.jpg"
    Image.fromarray(_pixels(0, rng, 64)).save(full, quality=95)
    data = full.read_bytes()
    full.unlink()
    truncated = base / f"{good_name}1.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    (base / f"{good_name}2.jpg").write_text("not an image")
    Image.fromarray(_pixels(1, rng)).save(base / "IMG_0042.jpg")
    Image.fromarray(_pixels(1, rng)).save(base / f"{bad_age_name}.jpg")
    rel = lambda p: (base / p).relative_to(root).as_posix()  # noqa: E731
    return {rel(f"{good_name}1.jpg"): "unreadable", rel(f"{good_name}2.jpg"): "unreadable",
            rel("IMG_0042.jpg"): "unparsed_name", rel(f"{bad_age_name}.jpg"): "no_age_group"}


def write_aihub(root: Path) -> Layout:
    """One folder per family, F0001/F0001_AGE_<member>_<age>_<letter><index>.jpg, a member per age group."""
    rng = np.random.default_rng(0)
    items = []
    for family in (f for families in AIHUB_FAMILIES.values() for f in families):
        for label, (member, age) in enumerate(zip(MEMBERS, AGES)):
            name = f"F{family:04d}"
            items.append((f"{name}/{name}_AGE_{member}_{age}_{'abcdefgh'[label]}1", label))
    usable, modes = _write_images(root, items, rng)
    layout = Layout(root, usable, modes=modes)
    layout.skipped = _write_awkward(root, "F0003", "F0003_AGE_M_40_e", "F0003_AGE_GF_95_h1")
    return layout


def write_utkface(root: Path, per_group: int = 10) -> Layout:
    """A flat folder of {age}_{gender}_{race}_{datetime}.jpg, some with the aligned set's .jpg.chip."""
    rng = np.random.default_rng(0)
    items = []
    for label, age in enumerate(AGES):
        for i in range(per_group):
            chip = ".jpg.chip" if i % 2 else ""
            items.append((f"{age + i % 3}_{i % 2}_{i % 5}_2017011617452{label}{i:03d}{chip}", label))
    usable, modes = _write_images(root, items, rng)
    layout = Layout(root, usable, modes=modes)
    layout.skipped = _write_awkward(root, ".", "30_1_0_2017011617452512", "101_0_0_20170116174525125")
    return layout


def write_csv(root: Path, per_group: int = 10) -> Layout:
    """images/<n>.png listed in labels.csv (path, age), with a missing file, an age that is no number,
    a row repeated (as "./path": one image) and an image listed twice with different ages."""
    rng = np.random.default_rng(0)
    folder = root / "csv"
    items = [(f"images/person{label}_{i}", label) for label, _ in enumerate(AGES) for i in range(per_group)]
    usable, modes = _write_images(folder, items, rng)
    ages = {rel: AGES[label] + int(rel.split("_")[-1].split(".")[0]) % 3 for rel, label in usable.items()}
    rows = [f"{rel},{age}" for rel, age in ages.items()]
    unparsed, repeated, conflicting = list(usable)[:3]
    rows += ["images/missing.jpg,30", f"{unparsed},thirty", f"./{repeated},{ages[repeated]}",
             f"{conflicting},{ages[conflicting] + 1}"]
    rows.remove(f"{unparsed},{ages[unparsed]}")
    (folder / "labels.csv").write_text("path,age\n" + "\n".join(rows) + "\n")
    for rel in (unparsed, conflicting):
        del usable[rel]
    layout = Layout(folder / "labels.csv", usable, modes=modes)
    layout.skipped = {"images/missing.jpg": "missing", unparsed: "unparsed_name", conflicting: "conflicting_rows"}
    return layout


WRITERS = {"aihub": write_aihub, "utkface": write_utkface, "csv": write_csv}


def main(argv: list[str]) -> None:
    out = Path(argv[0])
    for fmt in argv[1:] or list(WRITERS):
        layout = WRITERS[fmt](out / fmt if fmt != "csv" else out)
        print(f"{fmt}: face_age.root={layout.root.resolve()}")


if __name__ == "__main__":
    main(sys.argv[1:])
