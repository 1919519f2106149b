import gzip
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT, idx_bytes
from tlstudy.idx import FASHION_MNIST, DatasetError, fetch_idx_dataset, load_idx_dataset, read_idx, scale


def test_fetch_decompresses_and_verifies(tiny_idx, tmp_path):
    spec, src, arrays = tiny_idx
    provenance = fetch_idx_dataset(spec, tmp_path / "raw", src)
    loaded = load_idx_dataset(spec, tmp_path / "raw")
    for array, (name, expected) in zip(loaded, arrays.items()):
        np.testing.assert_array_equal(array, expected)
        assert provenance[name]["source"] == str(src / f"{name}.gz")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(arrays)


def test_fetch_accepts_uncompressed_files(tiny_idx, tmp_path):
    spec, src, arrays = tiny_idx
    plain = tmp_path / "plain"
    plain.mkdir()
    for name, array in arrays.items():
        (plain / name).write_bytes(idx_bytes(array))
    fetch_idx_dataset(spec, tmp_path / "raw", plain)
    assert (tmp_path / "raw" / "train-images-idx3-ubyte").read_bytes() == idx_bytes(arrays["train-images-idx3-ubyte"])


def test_fetch_downloads_when_no_local_copy(tiny_idx, tmp_path):
    spec, src, arrays = tiny_idx
    # urllib serves file:// URLs, which exercises the download path without a network.
    spec = type(spec)(**{**spec.__dict__, "urls": ("http://127.0.0.1:9/", src.as_uri() + "/")})
    provenance = fetch_idx_dataset(spec, tmp_path / "raw", None)
    assert {p["source"] for p in provenance.values()} == {"download"}
    assert not list((tmp_path / "raw").glob("*.gz"))


def test_checksum_mismatch_names_the_file_and_leaves_no_output(tiny_idx, tmp_path):
    spec, src, arrays = tiny_idx
    bad = arrays["t10k-labels-idx1-ubyte"].copy()
    bad[0] ^= 1
    (src / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(bad)))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz: checksum mismatch.*fetch again"):
        fetch_idx_dataset(spec, tmp_path / "raw", src)
    assert not (tmp_path / "raw").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["source"]  # no temporary directory left behind


def test_failure_keeps_previous_output_intact(tiny_idx, tmp_path):
    spec, src, _ = tiny_idx
    fetch_idx_dataset(spec, tmp_path / "raw", src)
    before = {p.name: p.read_bytes() for p in (tmp_path / "raw").iterdir()}
    (src / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        fetch_idx_dataset(spec, tmp_path / "raw", src)
    assert {p.name: p.read_bytes() for p in (tmp_path / "raw").iterdir()} == before


def test_truncated_idx_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((3, 4, 4), np.uint8))[:-5])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: truncated or padded: header says \[3, 4, 4\]"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(path)


def test_wrong_magic_number(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(b"\x00\x00\x0d\x01" + (2).to_bytes(4, "big") + b"\x00\x01")  # float type code
    with pytest.raises(DatasetError, match="wrong magic number 0x00000d01"):
        read_idx(path)


def test_no_source_and_failed_download_says_what_to_do(tiny_idx, tmp_path):
    spec, _, _ = tiny_idx
    with pytest.raises(DatasetError, match="not found locally and the download failed.*make the tiny files"):
        fetch_idx_dataset(spec, tmp_path / "raw", None)
    with pytest.raises(DatasetError, match="does-not-exist does not exist"):
        fetch_idx_dataset(spec, tmp_path / "raw", tmp_path / "does-not-exist")


def test_fetch_stage_exits_nonzero_with_one_line_error(tmp_path):
    """The stage itself: a corrupt file in data.source_dir is one error line and exit code 1."""
    src = tmp_path / "corrupt"
    src.mkdir()
    for spec in FASHION_MNIST.files:
        (src / spec.name).write_bytes(idx_bytes(np.zeros((2,) + (2, 2) * (spec.ndim == 3), np.uint8)))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["source_dir"] = str(src)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, "-m", "stages.fetch", "--out", "data/raw", "--weights", "weights.json"],
                            cwd=tmp_path,
                            capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "train-images-idx3-ubyte: checksum mismatch" in errors[0]
    assert not (tmp_path / "data" / "raw").exists()


def test_fetch_stage_leaves_verified_files_alone_and_replaces_a_corrupt_one(tiny_idx, tmp_path):
    """A repro with nothing changed rewrites nothing (DVC then has nothing to rehash); a changed byte
    is caught by the MD5 and the files are fetched again."""
    from stages.fetch import already_verified

    spec, src, arrays = tiny_idx
    out = tmp_path / "raw"
    fetch_idx_dataset(spec, out, src)
    assert already_verified(spec, out)
    first = out / "train-labels-idx1-ubyte"
    data = bytearray(first.read_bytes())
    data[-1] ^= 1
    first.write_bytes(bytes(data))
    assert not already_verified(spec, out)
    (out / "t10k-images-idx3-ubyte").unlink()
    assert not already_verified(spec, out)


def test_scale_maps_each_byte_to_its_float32_fraction_of_255():
    """Every value a pixel can take, against p / 255 in double precision rounded once to float32 (double
    rounding is exact for a division of float32 values): the arrays preprocess stores, byte for byte."""
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 4, 4)
    expected = np.array([p / 255 for p in range(256)], np.float32).reshape(16, 4, 4)
    scaled = scale(pixels)
    assert scaled.dtype == np.float32 and scaled.tobytes() == expected.tobytes()
