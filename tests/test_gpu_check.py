"""benchmarks/gpu_check.py without a GPU: it says it needs CUDA and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_without_cuda_says_so_and_exits_0() -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gpu_check needs CUDA" in done.stdout and "nothing was checked" in done.stdout


@pytest.mark.slow
def test_gpu_check_cpu_smoke_runs_every_section() -> None:
    """The whole check at tiny sizes on the CPU (the script's own logic; numbers mean nothing)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke"], capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    table = done.stdout.split("ratmir GPU check:")[-1]
    for section in ("equality", "train", "infer", "regions", "torchrun"):
        assert f"\n{section}" in table, section
    assert "ERROR" not in table and "MISMATCH" not in table
