"""What a run's numbers depend on beyond params: the machine and the library versions.

Same params on one machine type give bit-identical results (deterministic kernels); on another CPU
family oneDNN picks other kernels (AVX2, AVX-512, AMX), whose floating-point sums differ, and a
ResNet50 run moves by a point or two. So each run records where it ran.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

# CPU flags that decide which oneDNN kernels run, in rising order of width.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_description(cpuinfo: str) -> tuple[str, list[str]]:
    """The CPU model name and the oneDNN-relevant instruction-set flags from ``/proc/cpuinfo``'s text."""
    model, flags = platform.processor() or platform.machine(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name":
            model = value.strip()
        elif key in ("flags", "Features"):
            flags = set(value.split())
    return model, [flag for flag in ISA_FLAGS if flag in flags]


@lru_cache(maxsize=1)
def environment() -> dict:
    """CPU model and instruction sets, GPUs, TensorFlow, Keras and NumPy versions."""
    import os

    import keras
    import numpy as np
    import tensorflow as tf

    cpuinfo = Path("/proc/cpuinfo")
    model, isa = cpu_description(cpuinfo.read_text() if cpuinfo.exists() else "")
    return {
        "cpu": model,
        "cpu_isa": " ".join(isa),
        "machine": platform.machine(),
        "gpus": ", ".join(d.name for d in tf.config.list_physical_devices("GPU")) or "none",
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "TensorFlow's default"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
