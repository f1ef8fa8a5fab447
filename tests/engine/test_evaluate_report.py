from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.engine import load_config, train
from ratmir.engine.evaluate import evaluate
from ratmir.engine.report import write_report

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


@pytest.fixture()
def two_runs(tiny_dataset, tmp_path):
    runs = []
    for name, model in (("rat", "rat"), ("dncnn", "dncnn")):
        extra = [] if model == "rat" else ["model.name=dncnn", "model.options={features: 8, depth: 4}"]
        cfg = load_config(SMOKE, overrides=[f"data.root={tiny_dataset}", "train.iterations=10", "train.val_every=10",
                                            *extra])
        train(cfg, out=tmp_path / name, progress=False)
        runs.append(tmp_path / name)
    return runs


def test_evaluate_and_report(two_runs, tiny_dataset, tmp_path) -> None:
    summaries = [evaluate(run, data=tiny_dataset, figures=1, region_metrics=True, progress=False, tile=24, overlap=4)
                 for run in two_runs]
    s = json.loads(summaries[0].read_text())
    assert s["label"] == "rat" and s["n_images"] == 2 and set(s["results"]) == {"model", "input"}
    assert set(s["results"]["model"]) == {"ct_full", "ct_window", "reference"}
    assert s["conventions"]["ct_window"]["data_range"] == 400.0
    out = summaries[0].parent
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    for metric, stat in s["results"]["input"]["ct_window"].items():  # mean ± std of the per-image rows
        values = [float(r[metric]) for r in rows if r["method"] == "input" and r["convention"] == "ct_window"]
        assert stat["n"] == 2 and stat["nonfinite"] == 0 and len(values) == 2
        assert stat["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert stat["std"] == pytest.approx(np.std(values), rel=1e-9) and stat["std"] > 0
    assert len(rows) == 2 * 2 * 3  # images x methods x conventions
    assert (out / "regions.csv").stat().st_size > 0 and list((out / "figures").glob("*.png"))

    report = write_report(two_runs, out=tmp_path / "report", title="Smoke")
    text = report.read_text()
    assert "| rat |" in text and "| dncnn |" in text and text.count("| input (LQ) |") == 1
    assert (tmp_path / "report" / "psnr.png").stat().st_size > 0
    assert len(list(csv.DictReader(open(tmp_path / "report" / "report.csv")))) == 3 * 3


def test_cli_errors(tiny_dataset, tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", str(tmp_path / "nothing"), "--data", str(tiny_dataset)])
    assert res.exit_code == 2 and "no model weights" in res.output
    res = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "ratmir evaluate" in res.output
    res = runner.invoke(app, ["train", str(SMOKE), "--out", str(tmp_path / "x"), "--set", "train.iteratons=3"])
    assert res.exit_code == 2 and "did you mean 'iterations'" in res.output


def test_channel_mismatch(two_runs, tmp_path) -> None:
    from ratmir_testdata import write_tiny_dataset

    rgb = write_tiny_dataset(tmp_path / "rgb", channels=3)
    with pytest.raises(ValueError, match="expects 1 channel"):
        evaluate(two_runs[0], data=rgb, progress=False)


def test_cli_evaluate_with_other_regions_and_bf16(two_runs, tiny_dataset, tmp_path) -> None:
    """`ratmir evaluate --regions grid --precision bf16` scores a trained model with another
    region source and bf16 autocast; both are recorded; a bad precision is a usage error."""
    res = CliRunner().invoke(app, ["evaluate", str(two_runs[0]), "--data", str(tiny_dataset), "--out",
                                   str(tmp_path / "e"), "--regions", "grid", "--precision", "bf16", "--figures", "0"])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["precision"] == "bf16" and s["region_source"]["kind"] == "grid"
    res = CliRunner().invoke(app, ["evaluate", str(two_runs[0]), "--data", str(tiny_dataset), "--out",
                                   str(tmp_path / "f"), "--precision", "fp16"])
    assert res.exit_code == 2 and "precision must be one of ('auto', 'fp32', 'bf16'), got 'fp16'" in res.output
    assert not (tmp_path / "f").exists()
