"""The study benchmark's measurements, against processes whose cost is known."""

import sys

import pytest

from benchmarks.study import run_stage


def test_a_stage_s_peak_memory_is_its_own_process_s_in_mib(tmp_path):
    allocate = f"{sys.executable} -c 'b = b\"x\" * (300 * 2**20)'"  # 300 MiB written
    seconds, peak = run_stage(allocate, tmp_path)
    assert 300 <= peak < 400, "300 MiB touched, plus the interpreter"
    _, idle = run_stage(f"{sys.executable} -c 'pass'", tmp_path)
    assert idle < 50, "another process's peak is not carried over"


def test_a_failing_stage_stops_the_benchmark_with_its_error(tmp_path):
    with pytest.raises(SystemExit, match="ZeroDivisionError"):
        run_stage(f"{sys.executable} -c '1 / 0'", tmp_path)
