"""Which TensorFlow build the set-up installs: the CUDA build where ``nvidia-smi`` lists a GPU, the
CPU build elsewhere (``tensorflow-cpu`` never sees a GPU; ``tensorflow[and-cuda]`` brings its CUDA
libraries from PyPI). Standard library only: the Makefile runs it before the virtual environment
exists, to choose the lock the set-up installs (requirements-cpu.txt or requirements-cuda.txt):

    python3 -m tlstudy.accelerator --build   # cpu or cuda
    python3 -m tlstudy.accelerator           # the requirement line, e.g. tensorflow-cpu==2.21.0
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys

# The version the recorded results were measured with (Python 3.11), as requirements-cpu.in and
# requirements-cuda.in pin it (tests/test_provenance.py holds them equal).
TENSORFLOW_VERSION = "2.21.0"
X86_64 = ("x86_64", "AMD64")


def listed_gpus() -> list[str]:
    """The GPUs ``nvidia-smi -L`` lists ("GPU 0: NVIDIA H100 ..."); none where it is missing or fails
    (a driver that does not answer, a container without the device)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        result = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode != 0:
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("GPU ")]


def tensorflow_requirement(gpus: list[str], machine: str | None = None) -> str:
    """The pip requirement: ``tensorflow[and-cuda]`` with a GPU; ``tensorflow-cpu`` on x86-64 without one
    (smaller, no CUDA libraries); plain ``tensorflow`` elsewhere (ARM), where it is the CPU build."""
    machine = machine or platform.machine()
    if gpus:
        return f"tensorflow[and-cuda]=={TENSORFLOW_VERSION}"
    if machine in X86_64:
        return f"tensorflow-cpu=={TENSORFLOW_VERSION}"
    return f"tensorflow=={TENSORFLOW_VERSION}"


def main() -> int:
    gpus = listed_gpus()
    requirement = tensorflow_requirement(gpus)
    why = f"nvidia-smi lists {len(gpus)} GPU(s)" if gpus else "no GPU listed by nvidia-smi"
    print(f"TensorFlow build: {requirement} ({why})", file=sys.stderr)
    print(("cuda" if gpus else "cpu") if "--build" in sys.argv[1:] else requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main())
