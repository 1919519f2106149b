import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from tlstudy.idx import IdxDataset, IdxFile

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs the real pipeline (minutes); deselect with -m 'not slow'")


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the idx format."""
    header = (0x0800 | array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def tiny_idx(tmp_path):
    """A tiny dataset in the idx layout (gzipped, as Debian ships it) and a spec with its real MD5s."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 4, 4), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(20, dtype=np.uint8) % 2,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(6, dtype=np.uint8) % 2,
    }
    src = tmp_path / "source"
    src.mkdir()
    files = []
    for name, array in arrays.items():
        raw = idx_bytes(array)
        (src / f"{name}.gz").write_bytes(gzip.compress(raw))
        files.append(IdxFile(name, hashlib.md5(raw).hexdigest(), array.ndim, len(array)))
    spec = IdxDataset(name="tiny", files=tuple(files), urls=("http://127.0.0.1:9/",),
                      class_names=("even", "odd"), hint="make the tiny files")
    return spec, src, arrays
