"""The models that ship in the package: they load offline with their hash, `--model NAME` works in
restore/evaluate, `ratmir models` lists and shows them, and `train --init NAME` fine-tunes from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.engine import ConfigError, load_config, train
from ratmir.io import read_dicom
from ratmir.models import load_pretrained, read_metadata
from ratmir.models.hub import packaged_model_path, packaged_models, resolve_weights

SHIPPED = {"ct": "rat", "ct-redcnn": "redcnn", "pet": "rat", "pet-dncnn": "dncnn", "pathology": "rat",
           "pathology-dncnn": "dncnn"}  # name -> architecture of every model this ratmir ships
SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def test_the_shipped_models_are_all_there() -> None:
    models = packaged_models()
    assert {name: m.architecture for name, m in models.items() if name in SHIPPED} == SHIPPED
    for name in SHIPPED:
        meta = read_metadata(packaged_model_path(name))
        assert meta["task"] == models[name].task and meta["regions_backend"] == models[name].regions_backend
        assert models[name].summary["test"]["psnr"] > models[name].summary["test"]["input_psnr"]


def test_models_list_and_show() -> None:
    runner = CliRunner()
    listing = runner.invoke(app, ["models"])
    assert listing.exit_code == 0 and all(f"\n{name} " in listing.output for name in SHIPPED)
    card = runner.invoke(app, ["models", "show", "ct"])
    assert card.exit_code == 0 and "Not for clinical use" in card.output and "## Test split" in card.output
    missing = runner.invoke(app, ["models", "show", "mri"])
    assert missing.exit_code == 2 and "no packaged model named 'mri'" in missing.output


def test_restore_a_dicom_with_model_ct(real_ct_path, tmp_path) -> None:
    result = CliRunner().invoke(app, ["restore", str(real_ct_path), "--model", "ct", "--out", str(tmp_path / "out"),
                                      "--regions", "grid", "--no-progress"])
    assert result.exit_code == 0, result.output
    (out,) = (tmp_path / "out").glob("*.dcm")
    restored, source = read_dicom(out), read_dicom(real_ct_path)
    assert restored.pixels.shape == source.pixels.shape
    assert 0 < np.abs(restored.pixels - source.pixels).mean() < 100  # a denoiser: close to its input, not equal


def test_evaluate_model_ct_writes_beside_the_user(tiny_dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["evaluate", "ct", "--data", str(tiny_dataset), "--figures", "0"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "evaluation" / "ct" / "summary.json").read_text())
    assert summary["label"] == "ct" and summary["architecture"] == "rat"
    assert resolve_weights("ct") == packaged_model_path("ct")


def _ct_options() -> str:
    options = dict(load_pretrained(packaged_model_path("ct")).config)
    options.pop("in_channels")
    return "model.options=" + json.dumps(options)


def test_init_ct_fine_tunes_from_the_packaged_model(tiny_dataset, tmp_path) -> None:
    short = [f"data.root={tiny_dataset}", "train.iterations=2", "train.log_every=1", "train.val_every=2",
             "data.patch_size=32", _ct_options()]
    def first_loss(run: Path) -> float:
        return next(json.loads(line)["loss_vs_identity"] for line in (run / "metrics.jsonl").read_text().splitlines())
    scratch = train(load_config(SMOKE, overrides=short), out=tmp_path / "scratch", progress=False).run
    tuned = train(load_config(SMOKE, overrides=[*short, "model.init=ct"]), out=tmp_path / "tuned", progress=False).run
    # the packaged model denoises from its first step; a fresh one starts at the identity
    assert first_loss(tuned) < 0.9 * first_loss(scratch)
    with pytest.raises(ConfigError, match="model.init: .* width 16 vs 8"):
        train(load_config(SMOKE, overrides=[f"data.root={tiny_dataset}", "model.init=ct"]), out=tmp_path / "x",
              progress=False)
    assert not (tmp_path / "x").exists()
