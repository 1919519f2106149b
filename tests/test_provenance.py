"""Where a run ran, and TensorFlow's oneDNN kernels switched on before TensorFlow loads."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tlstudy.provenance import cpu_description

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse4_2 avx avx2 fma bmi2

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse4_2 avx avx2 fma bmi2
"""


def test_cpu_description_names_the_model_and_the_instruction_sets_onednn_uses():
    assert cpu_description(CPUINFO) == ("AMD EPYC 7B13", ["sse4_2", "avx", "avx2", "fma"])
    xeon = CPUINFO.replace("AMD EPYC 7B13", "Intel Xeon").replace("bmi2", "avx512f avx512_vnni amx_tile")
    assert cpu_description(xeon)[1] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile"]


@pytest.mark.parametrize("setting, expected_on", [(None, True), ("0", False)])
def test_importing_the_project_turns_onednn_on_unless_the_user_chose(setting, expected_on):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    result = subprocess.run([sys.executable, "-c", "import stages, tensorflow"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("oneDNN custom operations are on" in result.stderr) == expected_on


def test_the_recorded_environment_names_the_tensorflow_build():
    from tlstudy.provenance import environment, tensorflow_build

    cuda = {"is_cuda_build": True, "cuda_version": "12.5.1", "cudnn_version": "9"}
    assert tensorflow_build({"tensorflow": "2.21.0"}, cuda) == "tensorflow 2.21.0, CUDA 12.5.1, cuDNN 9"
    assert tensorflow_build({"tensorflow-cpu": "2.21.0"}, {"is_cuda_build": False}) == "tensorflow-cpu 2.21.0, CPU only"
    # This machine: what pip says is installed, against TensorFlow's own account of its build.
    from importlib import metadata

    import tensorflow as tf

    recorded = environment()["tensorflow_build"]
    cpu_wheel = any(d.metadata["Name"].lower().replace("_", "-") == "tensorflow-cpu" for d in metadata.distributions())
    assert recorded.startswith("tensorflow-cpu 2.21.0" if cpu_wheel else "tensorflow 2.21.0")
    assert recorded.endswith("CPU only") != tf.test.is_built_with_cuda()


FAKE_SMI = {
    "one GPU": ("echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5b6e1c3a)'", 0),
    "two GPUs": ("printf 'GPU 0: Tesla T4 (UUID: GPU-1)\\nGPU 1: Tesla T4 (UUID: GPU-2)\\n'", 0),
    "driver not loaded": ("echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"", 9),
    "no devices": ("echo 'No devices found.'", 6),
    "no devices, status 0": ("echo 'No devices found.'", 0),  # what counts is a listed GPU, not the status
}


@pytest.mark.parametrize("case", [*FAKE_SMI, None])
def test_setup_installs_the_cuda_build_only_where_nvidia_smi_lists_a_gpu(case, tmp_path):
    """The set-up's choice, run as `make setup` runs it (system python, before the venv), with a stand-in
    nvidia-smi on PATH (or none at all)."""
    if case is not None:
        body, status = FAKE_SMI[case]
        smi = tmp_path / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 2\n{body}\nexit {status}\n")
        smi.chmod(0o755)
    result = subprocess.run([sys.executable, "-m", "tlstudy.accelerator"], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    gpu = case in ("one GPU", "two GPUs")
    expected = "tensorflow[and-cuda]==2.21.0" if gpu else "tensorflow-cpu==2.21.0"
    import platform
    if not gpu and platform.machine() not in ("x86_64", "AMD64"):
        expected = "tensorflow==2.21.0"
    assert result.stdout.strip() == expected
    assert (f"lists {2 if case == 'two GPUs' else 1} GPU(s)" if gpu else "no GPU listed") in result.stderr


@pytest.mark.parametrize("case", ["one GPU", "no devices", None])
def test_the_setup_installs_the_lock_of_the_build_chosen(case, tmp_path):
    """`make setup`, dry run into a venv that does not exist yet, with a stand-in nvidia-smi (or none):
    the CUDA lock where a GPU is listed, the CPU lock elsewhere; each lock pins the version the
    chooser names."""
    from tlstudy.accelerator import TENSORFLOW_VERSION

    path = f"{tmp_path}:/usr/bin:/bin"
    if case is not None:
        body, status = FAKE_SMI[case]
        smi = tmp_path / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 2\n{body}\nexit {status}\n")
        smi.chmod(0o755)
    result = subprocess.run(["make", "-n", f"VENV={tmp_path / 'venv'}", f"PYTHON={sys.executable}",
                             str(tmp_path / "venv" / ".installed")], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": path}, timeout=120)
    assert result.returncode == 0, result.stderr
    build = "cuda" if case == "one GPU" else "cpu"
    assert f"--require-hashes -r requirements-{build}.txt" in result.stdout
    assert f"requirements-{'cpu' if build == 'cuda' else 'cuda'}.txt" not in result.stdout
    pins = {lock: (ROOT / f"requirements-{lock}.in").read_text() for lock in ("cpu", "cuda")}
    assert f"tensorflow-cpu=={TENSORFLOW_VERSION}" in pins["cpu"]
    assert f"tensorflow[and-cuda]=={TENSORFLOW_VERSION}" in pins["cuda"]
