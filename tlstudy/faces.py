"""Face-age datasets: AI-Hub's Korean family faces, UTKFace, or any CSV of paths and ages.

Three steps, each its own function so each can be tested on its own:

- ``list_source`` finds the files of a source and records their size and content hash (the fetch
  stage writes this manifest, so DVC notices when a user's folder changes, even a file replaced by
  ``cp -p`` or ``rsync -a`` with its size and modification time kept);
- ``parse_source`` reads each file's labels from its name (``aihub``, ``utkface``) or from the
  CSV (``csv``): age in years, and the identity that splits must not divide (a family, for AI-Hub);
- ``load_images`` decodes, converts to RGB and resizes, counting every file it has to skip
  (``decode_rows`` and ``to_mode`` serve the image-folder task too).

Skipped files carry a reason from ``PROBLEMS``; the preprocess stage writes them to a report.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

FORMATS = ("aihub", "utkface", "csv")
MANIFEST = "manifest.csv"  # what fetch writes into data/raw/ for a user's source: path, size, sha256
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# The original study's eight age groups, in years, both ends included.
STUDY_AGE_GROUPS = ((0, 6), (7, 12), (13, 19), (20, 30), (31, 45), (46, 55), (56, 66), (67, 80))
PROBLEMS = {
    "unparsed_name": "the file name does not follow the format's pattern",
    "no_age_group": "the age falls in no age group",
    "unreadable": "the image cannot be decoded (corrupt, truncated or not an image)",
    "missing": "the CSV names a file that does not exist",
    "conflicting_rows": "the CSV lists the image more than once with different labels or identities",
    "not_in_metadata": "the metadata CSV (face_age.metadata) does not list the image",
}

LAYOUTS = """Layouts accepted (face_age.format):
  aihub    one folder per family, files such as F0001/F0001_AGE_D_18_a1.jpg (family, kind, member, age in
           years, age-class letter and index); optionally face_age.metadata, a CSV with image_path and age_class.
  utkface  files named {age}_{gender}_{race}_{datetime}.jpg (the .jpg.chip.jpg of the aligned set too).
  csv      face_age.root is a CSV file with the columns path and age (optional: identity), paths relative to it."""

SOURCES = """Where the data comes from:
  AI-Hub's Korean family face data ("가족 관계가 알려진 얼굴 이미지 데이터") needs an AI-Hub account: download it
  from https://aihub.or.kr and point face_age.root at the folder of family folders.
  UTKFace is public: https://susanqq.github.io/UTKFace/ (the aligned and cropped set, UTKFace.tar.gz)."""


class FaceDataError(ValueError):
    """A face-age source that cannot be used as it stands; the message says what to fix."""


@dataclass(frozen=True)
class AgeGroups:
    bounds: tuple[tuple[int, int], ...] = STUDY_AGE_GROUPS

    @classmethod
    def from_param(cls, value) -> "AgeGroups":
        """``[[0, 6], [7, 12], ...]`` or ``["0-6", "7-12", ...]``: non-overlapping, ascending, both ends included."""
        bounds = []
        for item in value or ():
            try:
                low, high = (int(v) for v in (item.split("-") if isinstance(item, str) else item))
            except (TypeError, ValueError):
                raise FaceDataError(f"face_age.age_groups: {item!r} is not a range such as [20, 30] "
                                    "or '20-30'") from None
            bounds.append((low, high))
        if not bounds:
            raise FaceDataError("face_age.age_groups is empty; give ranges such as [[0, 6], [7, 12], ...]")
        for (low, high), previous in zip(bounds, [(-1, -1), *bounds]):
            if low > high or low <= previous[1]:
                raise FaceDataError(f"face_age.age_groups must ascend without overlapping; {low}-{high} does not")
        return cls(tuple(bounds))

    @property
    def names(self) -> list[str]:
        return [f"{low}-{high}" for low, high in self.bounds]

    def label(self, age: int) -> int | None:
        for label, (low, high) in enumerate(self.bounds):
            if low <= age <= high:
                return label
        return None


@dataclass(frozen=True)
class FaceRecord:
    path: str  # relative to the source's base directory
    age: int | None = None
    identity: str = ""  # a family (aihub), a person (csv, if given); "" when the format knows none
    label: int | None = None  # a given age group (aihub metadata), else from the age
    problem: str = ""  # a key of PROBLEMS; "" for a usable record


# AI-Hub family faces: F0001_AGE_D_18_a1 -> family F0001, kind AGE, member D, 18 years, class letter a, index 1.
AIHUB_NAME = re.compile(r"^(?P<family>F\d+)_(?P<kind>[A-Za-z]+)_(?P<member>[A-Za-z0-9]+)_(?P<age>\d{1,3})"
                        r"_(?P<letter>[A-Za-z])(?P<index>\d*)$")
# UTKFace: {age}_{gender}_{race}_{datetime}, the aligned set adding .jpg.chip before .jpg.
UTKFACE_NAME = re.compile(r"^(?P<age>\d{1,3})_(?P<gender>[01])_(?P<race>[0-4])_(?P<datetime>\d+)(\.jpg\.chip)?$")


def describe_missing_root(root, fmt: str) -> str:
    return (f"face_age.root {str(root)!r} does not exist (data.task=face_age, face_age.format={fmt}).\n"
            f"{SOURCES}\n{LAYOUTS}")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise FaceDataError(f"face_age.format must be one of {', '.join(FORMATS)}, got {fmt!r}.\n{LAYOUTS}")
    return fmt


def source_base(root: Path, fmt: str) -> Path:
    """The directory file paths are relative to: the root folder, or the CSV's folder."""
    return root.parent if fmt == "csv" else root


def list_source(root: Path, fmt: str, metadata: str | None = None) -> list[tuple[str, int, str]]:
    """(relative path, size, SHA-256) of every file the source consists of, sorted: the images
    under the root (or the CSV and the files it names), and the metadata CSV if any."""
    root = Path(root)
    check_format(fmt)
    if not root.exists():
        raise FaceDataError(describe_missing_root(root, fmt))
    base = source_base(root, fmt)
    if fmt == "csv":
        if not root.is_file():
            raise FaceDataError(f"face_age.format=csv wants face_age.root to be the CSV file, and {root} is a "
                                f"directory.\n{LAYOUTS}")
        paths = [root, *(base / row["path"] for row in read_csv_rows(root, ("path", "age")))]
    else:
        if not root.is_dir():
            raise FaceDataError(f"face_age.format={fmt} wants face_age.root to be a folder, and {root} is a file."
                                f"\n{LAYOUTS}")
        paths = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        if metadata:
            paths.append(base / metadata)
    return [file_entry(path, base) for path in sorted(set(paths))]


def file_entry(path: Path, base: Path) -> tuple[str, int, str]:
    """(path relative to ``base``, size, SHA-256 of the content). The content, not the modification
    time: ``cp -p`` and ``rsync -a`` replace a file and keep its time (and often its size), and a
    touched file with the same bytes needs no new preprocessing. Hashing costs one read of the data
    per fetch (``python -m benchmarks.decoding`` measures its rate). A file that cannot be read gets
    size -1 (absent) or its size and an empty hash; the stage that decodes it reports why."""
    rel = os.path.relpath(path, base).replace(os.sep, "/")
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        return rel, os.stat(path).st_size, digest
    except FileNotFoundError:  # named by the CSV but absent, or a dangling link
        return rel, -1, ""
    except OSError:  # no permission to read, an I/O error
        return rel, os.stat(path).st_size, ""


def write_manifest(entries: list[tuple[str, int, str]], directory: Path) -> None:
    with open(Path(directory) / MANIFEST, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "size", "sha256"])
        writer.writerows(entries)


def read_manifest_entries(directory: Path) -> list[tuple[str, int, str]]:
    with open(Path(directory) / MANIFEST, newline="") as f:
        return [(row["path"], int(row["size"]), row["sha256"]) for row in csv.DictReader(f)]


def read_manifest(directory: Path) -> list[str]:
    """The relative paths fetch listed: preprocess reads exactly the files DVC saw."""
    return [path for path, _, _ in read_manifest_entries(directory)]


def read_csv_rows(path: Path, required: tuple[str, ...]) -> list[dict]:
    if not Path(path).is_file():
        raise FaceDataError(f"{path} does not exist; it should be a CSV with the columns {', '.join(required)}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or ())]
        if missing:
            raise FaceDataError(f"{path} lacks the column(s) {', '.join(missing)}; its header is "
                                f"{', '.join(reader.fieldnames or ['(empty)'])}.\n{LAYOUTS}")
        return list(reader)


def parse_aihub(name: str) -> tuple[int, str] | None:
    match = AIHUB_NAME.match(Path(name).stem)
    return (int(match["age"]), match["family"]) if match else None


def parse_utkface(name: str) -> int | None:
    match = UTKFACE_NAME.match(Path(name).stem)
    return int(match["age"]) if match else None


def parse_source(root: Path, fmt: str, groups: AgeGroups, metadata: str | None = None,
                 files: list[str] | None = None) -> list[FaceRecord]:
    """One record per image of the source, usable or with the problem that makes it unusable.
    ``files``: the folder's relative paths as fetch listed them (default: list the folder now)."""
    root = Path(root)
    base = source_base(root, fmt)
    if files is None:
        files = [rel for rel, _, _ in list_source(root, fmt)]
    images = [rel for rel in files if Path(rel).suffix.lower() in IMAGE_SUFFIXES]
    records = []
    if fmt == "csv":
        rows = {}  # one entry per image, however often the CSV lists it (as "a.jpg" or "./a.jpg")
        for row in read_csv_rows(root, ("path", "age")):
            # Identities compared as people write them: "P1" and "P1 " are one person.
            entry = (_int_or_none(row["age"]), (row.get("identity") or "").strip())
            rows.setdefault(_normal_path(row["path"]), []).append(entry)
        for path, entries in rows.items():
            age, identity = entries[0]
            if not (base / path).is_file():
                records.append(FaceRecord(path, age, problem="missing"))
            elif len(set(entries)) > 1:  # which row is right is the user's call, not ours
                records.append(FaceRecord(path, problem="conflicting_rows"))
            elif age is None:
                records.append(FaceRecord(path, problem="unparsed_name"))
            else:
                records.append(FaceRecord(path, age, identity))
    elif fmt == "aihub":
        given = _aihub_metadata(base / metadata, groups) if metadata else None
        for rel in images:
            parsed = parse_aihub(rel)
            if given is not None and rel not in given:
                records.append(FaceRecord(rel, problem="not_in_metadata"))
            elif given is not None and given[rel] is None:
                records.append(FaceRecord(rel, problem="conflicting_rows"))
            elif parsed is None:
                records.append(FaceRecord(rel, problem="unparsed_name"))
            else:
                records.append(FaceRecord(rel, parsed[0], parsed[1], given[rel] if given else None))
    else:
        for rel in images:
            age = parse_utkface(rel)
            records.append(FaceRecord(rel, age) if age is not None else FaceRecord(rel, problem="unparsed_name"))
    return [_with_group(r, groups) for r in records]


def _normal_path(path: str) -> str:
    """A CSV's path as one spelling: "./a/b.jpg", "a//b.jpg" and "a\\b.jpg" are "a/b.jpg"."""
    return Path(os.path.normpath(str(path).strip().replace("\\", "/"))).as_posix()


def _int_or_none(value) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _with_group(record: FaceRecord, groups: AgeGroups) -> FaceRecord:
    if record.problem or record.label is not None:
        return record
    label = groups.label(record.age)
    if label is None:
        return FaceRecord(record.path, record.age, record.identity, problem="no_age_group")
    return FaceRecord(record.path, record.age, record.identity, label)


def _aihub_metadata(path: Path, groups: AgeGroups) -> dict[str, int | None]:
    """The study's metadata CSV: image_path (relative to the root) -> age_class, given as a group's
    index (0-based) or its name ("20-30"); None for an image listed twice with different classes."""
    labels = {}
    for row in read_csv_rows(path, ("image_path", "age_class")):
        value = str(row["age_class"]).strip()
        label = groups.names.index(value) if value in groups.names else _int_or_none(value)
        if label is None or not 0 <= label < len(groups.names):
            raise FaceDataError(f"{path}: age_class {value!r} of {row['image_path']} is neither a group index "
                                f"0-{len(groups.names) - 1} nor one of {', '.join(groups.names)} "
                                "(face_age.age_groups)")
        key = _normal_path(row["image_path"])
        labels[key] = label if labels.get(key, label) == label else None
    return labels


# Modes that hold one grey level per pixel: an image-folder task whose images are all in these keeps
# one channel (Fashion-MNIST's PNGs are "L").
GRAYSCALE_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# Why a file could not be decoded, for tasks that tell the reasons apart (the image-folder task).
DECODE_PROBLEMS = {
    "unreadable": "the file cannot be read (permissions, a broken link, an I/O error)",
    "not_an_image": "Pillow does not recognise the file as an image",
    "corrupt": "the image's data is truncated or corrupt",
    "decompression_bomb": "the image has more pixels than Pillow's limit (PIL.Image.MAX_IMAGE_PIXELS), "
                          "the guard against decompression bombs",
}


def to_mode(image: Image.Image, mode: str = "RGB") -> Image.Image:
    """Any mode to RGB or L: EXIF rotation applied; transparency composited over white (a transparent
    pixel's colour is arbitrary); palette, grayscale, 16-bit and CMYK converted."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-, 32-bit or float grey: to 8 bits
        array = np.asarray(image, dtype=np.float64)
        image = Image.fromarray((array * 255.0 / max(float(array.max()), 1.0)).astype(np.uint8))
    return image.convert(mode)


def to_rgb(image: Image.Image) -> Image.Image:
    return to_mode(image, "RGB")


def decode_image(path: Path, out: np.ndarray) -> str:
    """Decode an image into ``out``, (size, size, 3) for RGB or (size, size) for grey, stretched to that
    size (as the study resized); uint8, or float32 in [0, 1] (the pixels divided by 255, as
    ``explore.scale`` divides Fashion-MNIST's). Returns "" or the key of ``DECODE_PROBLEMS`` that
    stopped it, ``out`` then untouched."""
    size, mode = out.shape[0], "L" if out.ndim == 2 else "RGB"
    try:
        image = Image.open(path)
    except Image.DecompressionBombError:  # over twice Pillow's limit
        return "decompression_bomb"
    except Image.UnidentifiedImageError:
        return "not_an_image"
    except (OSError, SyntaxError, ValueError) as e:
        log.debug("cannot open %s: %s", path, e)
        # The system's errors (permissions, a broken link, I/O) carry an errno; Pillow's on bad data do not.
        return "unreadable" if getattr(e, "errno", None) is not None else "corrupt"
    with image:
        limit = Image.MAX_IMAGE_PIXELS  # Pillow only warns between its limit and twice it
        if limit and image.width * image.height > limit:
            return "decompression_bomb"
        try:
            image.draft(mode, (size, size))  # JPEG: decode at the smallest scale still >= size
            image.load()  # raises on truncated or corrupt data
            pixels = np.asarray(to_mode(image, mode).resize((size, size), Image.Resampling.BILINEAR), np.uint8)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            log.debug("cannot decode %s: %s", path, e)
            return "corrupt"
    if out.dtype == np.uint8:
        out[...] = pixels
    else:
        np.divide(pixels, np.float32(255.0), out=out)
    return ""


def load_image(path: Path, out: np.ndarray) -> bool:
    """``decode_image`` as face-age sees it: decoded or not."""
    return not decode_image(path, out)


def map_in_threads(function, n: int, workers: int | None = None, batch: int = 1024) -> list:
    """``[function(i) for i in range(n)]`` on a thread pool, ``batch`` tasks in flight at a time:
    ``Executor.map`` submits every task at once, and 70,000 pending futures of small images weighed
    more than their pixels (measured: python -m benchmarks.decoding)."""
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        return [result for start in range(0, n, batch)
                for result in pool.map(function, range(start, min(n, start + batch)))]


def decode_rows(paths: list[Path], x: np.ndarray, workers: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Decode ``paths[i]`` into ``x[i]`` (threads: Pillow releases the GIL while it decodes), then close
    up the rows of the files that failed, in place: returns the filled rows (a view of ``x``) and each
    path's problem ("" where decoded). With ``x`` allocated up front the peak is the final array plus
    an image per thread, where stacking a list of decoded images would hold every image twice."""
    problems = map_in_threads(lambda i: decode_image(paths[i], x[i]), len(paths), workers)
    decoded = [not p for p in problems]
    for row, i in enumerate(np.flatnonzero(decoded)):
        if row != i:
            x[row] = x[i]
    return x[:sum(decoded)], problems


@dataclass
class FaceData:
    x: np.ndarray  # uint8, (n, size, size, 3)
    kept: list[FaceRecord]  # one per image of x, in order
    skipped: list[FaceRecord]  # every unusable file, with its problem


def load_images(base: Path, records: list[FaceRecord], size: int, workers: int | None = None) -> FaceData:
    """Decode the usable records into one uint8 array allocated up front (``decode_rows``); the ones
    that cannot be decoded join the skipped records as ``unreadable``."""
    usable = [r for r in records if not r.problem]
    x, problems = decode_rows([Path(base) / r.path for r in usable], np.empty((len(usable), size, size, 3), np.uint8),
                              workers)
    kept = [r for r, problem in zip(usable, problems) if not problem]
    skipped = [r for r in records if r.problem]
    skipped += [FaceRecord(r.path, r.age, r.identity, r.label, "unreadable")
                for r, problem in zip(usable, problems) if problem]
    return FaceData(x, kept, sorted(skipped, key=lambda r: r.path))


def prepare(root: Path, fmt: str, groups: AgeGroups, size: int, metadata: str | None = None,
            strict: bool = False, files: list[str] | None = None) -> FaceData:
    """Parse and decode a source (``files``: see ``parse_source``). Unusable files are skipped with a
    warning, or, with ``strict``, are an error that lists them; no usable image at all is always an error."""
    root = Path(root)
    records = parse_source(root, fmt, groups, metadata, files)
    data = load_images(source_base(root, fmt), records, size)
    if data.skipped:
        counts = {p: sum(r.problem == p for r in data.skipped) for p in PROBLEMS}
        listing = "\n".join(f"  {r.path}: {PROBLEMS[r.problem]}" for r in data.skipped[:20])
        more = f"\n  ... and {len(data.skipped) - 20} more" if len(data.skipped) > 20 else ""
        summary = ", ".join(f"{n} {p}" for p, n in counts.items() if n)
        if strict:
            raise FaceDataError(f"{len(data.skipped)} unusable file(s) under {root} ({summary}), and "
                                f"face_age.strict is true:\n{listing}{more}\nFix or remove them, or set "
                                "face_age.strict=false to skip them.")
        log.warning("skipping %d unusable file(s) (%s); the preprocessing report lists them", len(data.skipped),
                    summary)
    if not data.kept:
        raise FaceDataError(f"no usable image under {root} for face_age.format={fmt}: {len(records)} file(s) "
                            f"found, {len(data.skipped)} unusable.\n{LAYOUTS}")
    return data


def identity_groups(identities: np.ndarray) -> np.ndarray:
    """The unit a split must keep whole, per image: its identity (family, person), or, for an image
    whose identity is unknown, the image itself. Then no identity spans two splits, whatever the mix."""
    identities = np.asarray(identities, dtype=str)
    alone = np.char.add("image:", np.arange(len(identities)).astype(str))
    return np.where(identities == "", alone, np.char.add("id:", identities))


def check_family_ranges(ranges: dict) -> None:
    """``split.face_age.families``: train, val and test as [first, last] family numbers that no two
    splits share; otherwise a family would sit in two splits."""
    parts = {}
    for part in ("train", "val", "test"):
        bounds = ranges.get(part) if isinstance(ranges, dict) else None
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(isinstance(b, int) for b in bounds)
                and bounds[0] <= bounds[1]):
            raise FaceDataError(f"split.face_age.families.{part} must be [first, last] family numbers with "
                                f"first <= last, got {bounds!r}")
        parts[part] = bounds
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            (a_low, a_high), (b_low, b_high) = parts[a], parts[b]
            if a_low <= b_high and b_low <= a_high:
                raise FaceDataError(f"split.face_age.families: {a} {parts[a]} and {b} {parts[b]} overlap, so a "
                                    "family would be in both; make the ranges disjoint")
