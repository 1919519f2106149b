import hashlib
import os

import numpy as np
import pytest

from tlstudy.fsutil import atomic_dir, save_npz, write_json


def test_save_npz_bytes_depend_on_the_arrays_only(tmp_path):
    """Same arrays, same file: a stage re-run with the same result changes no hash downstream."""
    arrays = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "names": np.array(["a", "bc"])}
    save_npz(tmp_path / "a.npz", **arrays)
    os.utime(tmp_path / "a.npz", (0, 0))
    save_npz(tmp_path / "b.npz", **arrays)
    digest = [hashlib.md5((tmp_path / f"{n}.npz").read_bytes()).hexdigest() for n in "ab"]
    assert digest[0] == digest[1]
    with np.load(tmp_path / "a.npz") as loaded:
        np.testing.assert_array_equal(loaded["x"], arrays["x"])
        assert list(loaded["names"]) == ["a", "bc"]
    save_npz(tmp_path / "b.npz", **{**arrays, "x": arrays["x"] + 1})
    assert hashlib.md5((tmp_path / "b.npz").read_bytes()).hexdigest() != digest[0]


def test_outputs_get_the_process_umask_not_mkstemps_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "report.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o002, 0o775), (0o077, 0o700)])
def test_directories_get_the_process_umask_not_mkdtemps_0700(tmp_path, umask, mode):
    """data/raw, data/split and models/init: readable by the group and others where the umask says so,
    whether the directory is new or replaces an older one."""
    (tmp_path / "old").mkdir(mode=0o700)
    previous = os.umask(umask)
    try:
        for name in ("new", "old"):
            with atomic_dir(tmp_path / name) as tmp:
                (tmp / "file").write_text("x")
    finally:
        os.umask(previous)
    for name in ("new", "old"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
