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


def tensorflow_build(installed: dict[str, str], build_info: dict) -> str:
    """Which TensorFlow build ran: the distribution installed (``tensorflow-cpu``, or ``tensorflow``,
    which ``make setup`` installs with its ``and-cuda`` extra where a GPU is listed) and whether it was
    built with CUDA, from ``tf.sysconfig.get_build_info()``."""
    name = next((dist for dist in ("tensorflow-cpu", "tensorflow") if dist in installed), "tensorflow")
    version = installed.get(name, "unknown version")
    if build_info.get("is_cuda_build"):
        cuda, cudnn = build_info.get("cuda_version", "?"), build_info.get("cudnn_version", "?")
        return f"{name} {version}, CUDA {cuda}, cuDNN {cudnn}"
    return f"{name} {version}, CPU only"


def installed_tensorflow() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


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
        "tensorflow_build": tensorflow_build(installed_tensorflow(), dict(tf.sysconfig.get_build_info())),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
