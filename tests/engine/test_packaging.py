"""`ratmir models package`: a finished run becomes a packaged model with a card written from its records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ratmir.engine import load_config, train
from ratmir.engine.packaging import PackageRequest, package_run, validation_curve
from ratmir.models.hub import model_card, packaged_model_path, packaged_models

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def _run(data: Path, out: Path, *extra: str) -> Path:
    cfg = load_config(SMOKE, overrides=[f"data.root={data}", "train.iterations=10", "train.val_every=5", *extra])
    return train(cfg, out=out, progress=False).run


@pytest.fixture()
def two_runs(tiny_dataset, tmp_path):
    rat = _run(tiny_dataset, tmp_path / "rat")
    cnn = _run(tiny_dataset, tmp_path / "cnn", "model.name=dncnn", "model.options={features: 4, depth: 3}")
    return tiny_dataset, rat, cnn


def test_package_model_and_baseline(two_runs, tmp_path) -> None:
    data, rat, cnn = two_runs
    folder = tmp_path / "weights"
    entries = package_run(PackageRequest(run=rat, name="tiny", data=data, baseline=cnn, baseline_name="tiny-cnn",
                                         config=Path("configs/smoke.yaml"), folder=folder, progress=False,
                                         resamples=200))
    assert [e.name for e in entries] == ["tiny", "tiny-cnn"]
    assert set(packaged_models(folder=folder)) == {"tiny", "tiny-cnn"}
    packaged_model_path("tiny", folder=folder)
    card = model_card("tiny", folder=folder)
    for needle in ("# `tiny`: rat for ct", "Not for clinical use", "## Training data", "## Recipe",
                   "ratmir train configs/smoke.yaml", "## Validation curve", "| 5 |", "| 10 |", "## Test split",
                   "tiny − input", "tiny − tiny-cnn", "95 % interval", "## Known limits", "width: 8"):
        assert needle in card, needle
    assert str(data) not in card  # no machine paths in a card
    other = model_card("tiny-cnn", folder=folder)
    assert "tiny-cnn − tiny" in other and "dncnn" in other
    summary = packaged_models(folder=folder)["tiny"].summary
    assert summary["iterations"] == 10 and summary["test"]["images"] == 2
    assert summary["test"]["convention"] == "ct_window"


def test_validation_curve_and_seconds(two_runs) -> None:
    _, rat, _ = two_runs
    curve, seconds = validation_curve(rat / "metrics.jsonl")
    assert [i for i, _, _ in curve] == [5, 10] and seconds > 0


def test_bad_requests_are_refused_before_any_work(two_runs, tmp_path) -> None:
    data, rat, cnn = two_runs
    folder = tmp_path / "weights"
    bad = [
        (dict(baseline_name="x"), "needs --baseline"),
        (dict(baseline=cnn, baseline_name="tiny"), "different names"),
        (dict(data=tmp_path), "holds no dataset.json"),
        (dict(run=tmp_path), "not a finished RUN folder"),
    ]
    other = tmp_path / "other-data"
    other.mkdir()
    (other / "dataset.json").write_text((data / "dataset.json").read_text())
    bad.append((dict(data=other), "was trained on"))
    for change, message in bad:
        request = PackageRequest(**{"run": rat, "name": "tiny", "data": data, "folder": folder, "progress": False,
                                    **change})
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            package_run(request)
    assert not folder.exists() and not (rat / "evaluation-package").exists()


def test_package_the_validation_best_weights(two_runs, tmp_path) -> None:
    import torch
    from safetensors.torch import load_file

    data, rat, _ = two_runs
    folder = tmp_path / "weights"
    best = torch.load(rat / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)
    # weights that differ from the final ones, so a copy of model.safetensors cannot pass
    best = {**best, "iteration": 5, "model": {k: v + 1e-3 if k.startswith("ending") else v for k, v in best["model"].items()}}
    torch.save(best, rat / "checkpoints" / "best.pt")
    final = load_file(str(rat / "model.safetensors"))
    (entry,) = package_run(PackageRequest(run=rat, name="tiny", data=data, folder=folder, progress=False,
                                          resamples=200, checkpoint="best"))
    stored = load_file(str(packaged_model_path("tiny", folder=folder)))
    assert stored.keys() == best["model"].keys()
    assert all(torch.equal(stored[k], best["model"][k]) for k in stored)
    assert not all(torch.equal(stored[k], final[k]) for k in stored)
    scored = json.loads((rat / "evaluation-package" / "summary.json").read_text())
    assert str(scored["weights"]).endswith("model-best.safetensors")  # the test split scored those weights
    card = model_card("tiny", folder=folder)
    it = int(best["iteration"])
    assert f"validation-best checkpoint, iteration {it}" in card and f"| {it} (packaged) |" in card
    assert "--checkpoint best" in card
    assert entry.summary["weights_iteration"] == it and entry.summary["iterations"] == 10


def test_checkpoint_choice_is_checked(two_runs, tmp_path) -> None:
    import torch

    data, rat, _ = two_runs
    with pytest.raises(ValueError, match="checkpoint must be one of final, best, got 'last'"):
        package_run(PackageRequest(run=rat, name="tiny", data=data, folder=tmp_path / "w", progress=False,
                                   checkpoint="last"))
    torch.save({"iteration": 5, "metrics": {"psnr": 1.0}, "model": {"x": torch.zeros(1)}}, rat / "checkpoints" / "best.pt")
    with pytest.raises(ValueError, match="does not hold the weights"):
        package_run(PackageRequest(run=rat, name="tiny", data=data, folder=tmp_path / "w", progress=False,
                                   checkpoint="best"))
    (rat / "checkpoints" / "best.pt").unlink()
    with pytest.raises(FileNotFoundError, match="holds no checkpoints/best.pt"):
        package_run(PackageRequest(run=rat, name="tiny", data=data, folder=tmp_path / "w", progress=False,
                                   checkpoint="best"))
    assert not (tmp_path / "w").exists() and not (rat / "evaluation-package").exists()
