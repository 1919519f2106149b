"""The code passes ruff (ruff.toml): an undefined name, an unused import or a loop variable caught late
fails here, in the suite, and not first in a user's run."""

import shutil
import subprocess

import pytest

from tests.conftest import ROOT


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed: make test installs it (requirements-dev.txt)")
    run = subprocess.run([ruff, "check", "--output-format", "concise", "."], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]
