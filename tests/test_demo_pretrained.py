"""`ratmir demo --pretrained`: the packaged models on the test split, no training (tiny stand-in models)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.demo import DEMO_FILE, DemoConfig, DemoFolderError, run_demo
from ratmir.models import DnCNN, RAT, save_pretrained
from ratmir.models import hub
from ratmir.tasks import get_task


def _package(folder, tmp_path, *, seed: int = 0) -> None:
    torch.manual_seed(seed)
    meta = {"task": "pet", "normalisation": json.dumps(get_task("pet").normalisation.record()),
            "regions_backend": "felzenszwalb", "regions_window": "auto"}
    for name, model in (("pet", RAT(width=8, enc_blocks=(1,), dec_blocks=(1,), middle_layers=1, layers_per_group=1,
                                    num_heads=2)),
                        ("pet-dncnn", DnCNN(features=4, depth=3))):
        path = save_pretrained(model, tmp_path / f"{name}-{seed}.safetensors", metadata=meta)
        hub.add_packaged_model(path, name=name, card=f"# `{name}`\n", summary={"iterations": 7, "dataset": {"seed": 0, "ct_noise_hu": None, "test_fraction": 0.25}},
                                folder=folder)


@pytest.fixture()
def packaged(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    _package(folder, tmp_path)
    monkeypatch.setattr(hub, "WEIGHTS_DIR", folder)
    return folder


def test_pretrained_demo_scores_restores_and_reports(packaged, tmp_path) -> None:
    config = DemoConfig(task="pet", out=tmp_path / "out", limit=1, pretrained=True, progress=False)
    report = run_demo(config)
    text = report.read_text()
    assert "No training here" in text and "`pet`" in text and "`pet-dncnn`" in text
    assert "| rat |" in text and "| dncnn |" in text and "## Verdict" in text
    folder = tmp_path / "out" / "pet"
    assert json.loads((folder / DEMO_FILE).read_text())["pretrained"] is True
    assert sorted(p.name for p in (folder / "data").iterdir() if p.is_dir()) == ["test"]  # only the test split
    assert list((folder / "restored").iterdir()) and list((folder / "figures").glob("*.png"))
    index = (tmp_path / "out" / "index.md").read_text()
    assert "packaged models" in index and "`ratmir demo --pretrained --task ct`" in index
    timings = json.loads((folder / "timings.json").read_text())
    assert "prepare the test split" in timings and "train rat" not in timings
    run_demo(config)  # a rerun reuses the prepared split
    assert json.loads((folder / "timings.json").read_text())["prepare the test split"]["note"] == "done by an earlier run"


def test_other_weights_are_refused_and_missing_models_named(packaged, tmp_path) -> None:
    config = DemoConfig(task="pet", out=tmp_path / "out", limit=1, pretrained=True, progress=False)
    run_demo(config)
    _package(packaged, tmp_path, seed=1)  # same names, other weights
    with pytest.raises(DemoFolderError, match="other settings"):
        run_demo(config)
    with pytest.raises(DemoFolderError, match="no packaged model 'ct', 'ct-redcnn'.*make demo TASK=ct"):
        run_demo(DemoConfig(task="ct", out=tmp_path / "out", pretrained=True, progress=False))


def test_a_seed_that_changes_the_split_is_refused(packaged, tmp_path) -> None:
    with pytest.raises(DemoFolderError, match="trained on a dataset prepared with seed 0, not 3"):
        run_demo(DemoConfig(task="pet", out=tmp_path / "out", limit=1, seed=3, pretrained=True, progress=False))
    assert not (tmp_path / "out").exists()


def test_cli_all_runs_the_packaged_tasks_and_names_the_others(packaged, tmp_path) -> None:
    result = CliRunner().invoke(app, ["demo", "--pretrained", "--task", "all", "--limit", "1",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "no packaged models for ct, pathology" in result.output
    assert (tmp_path / "o" / "pet" / "report.md").is_file() and not (tmp_path / "o" / "ct").exists()
