import gzip
import hashlib
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tlstudy.idx import IdxDataset, IdxFile

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs the real pipeline (minutes); deselect with -m 'not slow'")


# `make test` runs the suite on two pytest-xdist workers (docs/performance.md). A test module is one
# unit of work, so that its module-scoped repository is built once; the modules that share the session's
# plumbing repository are one unit. (xdist's own `--dist loadgroup` does not group under pytest 9.)
SHARED_SESSION_FIXTURE = {"tests/test_review.py": "plumbing", "tests/test_team.py": "plumbing",
                          "tests/test_rerun.py": "plumbing"}
# The units that take longest start first, so that no worker is left with one of them at the end.
LONGEST_FIRST = ("plumbing", "tests/test_pipeline.py", "tests/test_face_pipeline.py", "tests/test_resume.py")


def work_unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return SHARED_SESSION_FIXTURE.get(path, path)


def pytest_collection_modifyitems(items):
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the order above, not the number of tests per unit
    return ModuleScheduling(config, log)


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


# The plumbing profile: what the tests of review, remotes and sweeps run. MLP and CNN (the CNN-versus-
# MLP comparison gives the verdict something to say), two seeds (an interval), the tiny sizes.
PLUMBING = {"train.models": ["mlp", "cnn"], "train.seeds": [0, 1],
            "hypothesis.comparisons": {"cnn_vs_mlp": ["cnn", "mlp"]}}


@contextmanager
def scratch_dir(request, tmp_path_factory, name: str):
    """The directory of a module- or session-scoped fixture, removed at the fixture's teardown unless a
    test failed meanwhile or the run was stopped (then it stays for a look, as pytest keeps a failed
    test's ``tmp_path``).
    Every repository here holds the datasets twice (workspace and DVC cache): kept to the end of the
    session, the suite's directories add up to ~13 GB, more than a CI machine's disk may have free."""
    path = tmp_path_factory.mktemp(name)
    failed = request.session.testsfailed
    yield path
    if request.session.testsfailed == failed and request.session.exitstatus == pytest.ExitCode.OK:  # not stopped
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def plumbing_base(request, tmp_path_factory) -> Path:
    """One repository on the plumbing profile, its pipeline run and its results committed ("base: 2
    epochs"). Built once per session; every test module copies it (``copy_repo``), never changes it."""
    from tests.test_pipeline import make_repo, run

    with scratch_dir(request, tmp_path_factory, "plumbing") as root:
        repo = make_repo(root, PLUMBING)
        run(repo, sys.executable, "-m", "dvc", "repro")
        run(repo, "git", "add", "-A")
        run(repo, "git", "commit", "-qm", "base: 2 epochs")
        yield repo


def copy_repo(source: Path, target: Path) -> Path:
    """A working copy of a repository with its DVC cache: DVC re-hashes the copied files on first use."""
    shutil.copytree(source, target, symlinks=True)
    return target
