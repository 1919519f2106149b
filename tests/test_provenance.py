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
