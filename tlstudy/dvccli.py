"""DVC's command line, run from Python: the one wrapper that the sweep, the review comment and the
remote transfers share."""

from __future__ import annotations

import subprocess
import sys


class DvcError(RuntimeError):
    """A DVC command failed; the message names the command and ends with DVC's own error output."""


def dvc(*args: str, check: bool = True, stdout: bool = True, stderr: bool = True) -> subprocess.CompletedProcess:
    """``python -m dvc ARGS`` with this interpreter's DVC (the project's, whatever is first on PATH).

    ``stdout``, ``stderr``: keep each for the caller (True), or let it through to the terminal, for
    progress bars and logs. ``check``: a failure raises ``DvcError``, with DVC's error output if kept."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], text=True,
                            stdout=subprocess.PIPE if stdout else None, stderr=subprocess.PIPE if stderr else None)
    if check and result.returncode != 0:
        raise DvcError(f"dvc {' '.join(args)} failed (exit {result.returncode}):\n{(result.stderr or '')[-2000:]}")
    return result
