"""Ctrl-C on a real `python -m ratmir restore`: exit 130, one line, and every file under a final
name reads back (no half-written output); --resume then finishes the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ratmir.io import read_png, write_png
from ratmir.models import DnCNN, save_pretrained
from ratmir.restore import MANIFEST_NAME
from ratmir.tasks import get_task

FILES = 64  # enough that the run cannot finish between its first output and the signal, even on a loaded machine


def _outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_sigint_mid_run_leaves_only_complete_files(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for i in range(FILES):
        write_png(tmp_path / "in" / f"img{i:02d}.png", rng.integers(0, 4000, (96, 96), dtype=np.uint16))
    torch.manual_seed(0)  # a model slow enough (tens of ms a file) for the signal to land mid-run
    meta = {"task": "ct", "normalisation": json.dumps(get_task("ct").normalisation.record())}
    model = save_pretrained(DnCNN(features=16, depth=6), tmp_path / "model.safetensors", metadata=meta)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "ratmir", "restore", str(tmp_path / "in"), "--model", str(model), "--out", str(out),
            "--regions", "grid", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # a test run started in the background inherits SIGINT ignored (POSIX shells do that), and so would the child
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not _outputs(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before the first output was seen"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: interrupted: ") and f"of {FILES} file(s) finished" in lines[0]
    assert "--resume" in lines[0]
    finished = _outputs(out)
    assert 0 < len(finished) < FILES and f"interrupted: {len(finished)} of" in lines[0]
    for path in finished:  # every file under a final name is complete
        assert read_png(path).shape == (96, 96)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MANIFEST_NAME]  # no temporary file left
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{FILES - len(finished)} written, {len(finished)} already finished, 0 failed" in resumed.stdout
    assert len(_outputs(out)) == FILES
