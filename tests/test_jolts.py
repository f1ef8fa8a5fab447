"""benchmarks/jolts.py's peak on a hand-written metrics.jsonl."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "jolts.py"


def _peak():
    spec = importlib.util.spec_from_file_location("jolts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.peak


def test_peak_after_the_start_and_lines_without_it(tmp_path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    rows = [{"iteration": 5, "loss_vs_identity": 3.0}, {"iteration": 25, "loss_vs_identity": 1.0},
            {"iteration": 75, "loss_vs_identity": 1.66}, {"iteration": 75, "val_psnr": 50.0},
            {"iteration": 100, "loss_vs_identity": 0.9}]
    metrics.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert _peak()(metrics, after=20) == (1.66, 75)
    assert _peak()(metrics, after=0) == (3.0, 5)
    with pytest.raises(ValueError, match="no loss_vs_identity after iteration 100"):
        _peak()(metrics, after=100)
