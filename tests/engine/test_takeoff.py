"""Training diagnostics: gain over the identity, layer scales, the stall warning, a non-finite
loss that stops cleanly and resumes, the bf16 warning, and the warm-up schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ratmir.engine import load_config, train
from ratmir.engine.takeoff import STALL_DB, TAKEOFF_AFTER_WARMUP, TakeoffMonitor, check_point, gain_db
from ratmir.engine.trainer import TrainingDivergedError, build_scheduler
from ratmir.models import build_model
from ratmir.models.layer_scales import kind_means, layer_scale_sizes

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def smoke(root: Path, *extra: str):
    return load_config(SMOKE, overrides=[f"data.root={root}", *extra])


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_metrics_have_gain_over_identity_and_layer_scales(tiny_dataset, tmp_path) -> None:
    run = tmp_path / "run"
    train(smoke(tiny_dataset), out=run, progress=False)
    records = _records(run)
    logs = [r for r in records if "loss" in r]
    assert all(r["identity_loss"] > 0 and r["loss_vs_identity"] > 0 for r in logs)
    assert {"scale/lambda_ra/middle0", "scale/lambda_wa/middle0", "scale/beta/enc0", "scale/gamma/dec0"} <= set(logs[-1])
    assert logs[-1]["scale/lambda_ra/middle0"] > 0  # trained: no longer the zero init
    vals = [r for r in records if "val_psnr" in r]
    assert [r["iteration"] for r in vals] == [20, 40]
    for r in vals:
        assert r["val_gain_db"] == pytest.approx(r["val_psnr"] - r["val_input_psnr"])


def test_validation_gain_is_over_the_same_images(tiny_dataset) -> None:
    """gain_db is 0 for a model returning its input, and input_psnr covers only the images scored."""
    from ratmir.data import PairedDataset
    from ratmir.engine.validation import validate_model
    from ratmir.metrics import psnr

    class Identity(torch.nn.Module):
        def forward(self, lq, regions):
            return lq

    val = PairedDataset(tiny_dataset, "train")  # several images
    assert len(val) > 1
    first = val[0]
    for limit, expected in ((None, None), (1, float(psnr(first["lq"][None].clamp(0, 1), first["hq"][None],
                                                          data_range=1.0)[0]))):
        m = validate_model(Identity(), val, device=torch.device("cpu"), max_images=limit)
        assert m["gain_db"] == pytest.approx(0.0, abs=1e-9) and m["input_psnr"] == pytest.approx(m["psnr"])
        if expected is not None:
            assert m["input_psnr"] == pytest.approx(expected)


def test_identity_run_warns_once_at_a_quarter(tiny_dataset, tmp_path, capsys) -> None:
    # lr ~0 with a zero output conv: the model stays the identity exactly
    run = tmp_path / "stuck"
    train(smoke(tiny_dataset, "optim.lr=1.0e-12", "optim.lr_min=0", "optim.betas=[0.5, 0.999]",
                "model.options.identity_init=true"), out=run, progress=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning:")]
    assert len(lines) == 1, lines
    assert "after 10 of 40 iterations" in lines[0] and "beta1 0.5" in lines[0] and "identity_init" in lines[0]
    assert [r["iteration"] for r in _records(run) if "warning" in r] == [10]


def test_run_below_the_identity_warns_with_its_cause(tiny_dataset, tmp_path, capsys) -> None:
    # a random output conv starts far below the identity and is still below it at a quarter
    train(smoke(tiny_dataset, "optim.lr=1.0e-3", "model.options.identity_init=false"), out=tmp_path / "run",
          progress=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning:")]
    assert len(lines) == 1 and "random output convolution" in lines[0], lines


def test_stall_warning_names_a_random_output_layer_for_every_model_that_can_start_at_the_input() -> None:
    from ratmir.engine.takeoff import stall_warning

    for name, expected in [("rat", True), ("redcnn", True), ("dncnn", True), ("nafnet", False)]:
        config = load_config(SMOKE, overrides=[f"model.name={name}", "model.options={}"])
        line = stall_warning(iteration=10, iterations=40, gain=0.0, config=config)
        assert ("random output convolution" in line) is expected, (name, line)


def test_nan_loss_stops_keeps_last_checkpoint_and_resumes(tiny_dataset, tmp_path, monkeypatch) -> None:
    from ratmir.engine import trainer

    run = tmp_path / "run"
    real = trainer.FocalRegionLoss.forward
    calls = {"n": 0}

    def nan_at_iteration_25(self, pred, target, regions=None):
        loss = real(self, pred, target, regions)
        if pred.requires_grad:  # the model's loss, not the identity's
            calls["n"] += 1
            if calls["n"] == 25:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(trainer.FocalRegionLoss, "forward", nan_at_iteration_25)
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at iteration 25 of 40.*iteration 20\) is kept"):
        train(smoke(tiny_dataset, "train.checkpoint_every=10"), out=run, progress=False)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert last["iteration"] == 20
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    monkeypatch.undo()
    result = train(smoke(tiny_dataset, "train.checkpoint_every=10"), out=run, progress=False)
    assert result.resumed_from == 20 and result.iterations == 40


@pytest.mark.parametrize(("at", "error", "kept"), [
    (20, r"weights became NaN or infinite at iteration 20 of 40", 10),  # the step just before a checkpoint
    (22, r"model's output is NaN or infinite at iteration 23 of 40", 20),  # NaN weights, then a NaN output
])
def test_nan_gradient_stops_cleanly(tiny_dataset, tmp_path, monkeypatch, at, error, kept) -> None:
    """The realistic divergence: a non-finite gradient makes NaN weights (the loss refuses a
    NaN output): neither is saved, and the run resumes from the checkpoint before."""
    run = tmp_path / "run"
    real = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def nan_gradient(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        calls["n"] += 1
        if calls["n"] == at:
            for p in parameters:
                if p.grad is not None:
                    p.grad.fill_(float("nan"))
        return real(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", nan_gradient)
    config = smoke(tiny_dataset, "train.checkpoint_every=10", "optim.grad_clip=1.0")
    with pytest.raises(TrainingDivergedError, match=error + rf".*iteration {kept}\) is kept"):
        train(config, out=run, progress=False)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert last["iteration"] == kept
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    monkeypatch.undo()
    assert train(config, out=run, progress=False).resumed_from == kept


def test_nan_loss_is_one_error_line_on_the_command_line(tiny_dataset, tmp_path, monkeypatch, capsys) -> None:
    from typer.testing import CliRunner

    from ratmir.cli import app
    from ratmir.engine import trainer

    monkeypatch.setattr(trainer.FocalRegionLoss, "forward", lambda self, pred, target, regions=None:
                        (pred - target).abs().mean() * float("inf"))
    result = CliRunner().invoke(app, ["train", str(SMOKE), "--out", str(tmp_path / "run"), "--set",
                                      f"data.root={tiny_dataset}", "--no-progress"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "no checkpoint was written yet" in errors[0], result.output


def test_bf16_without_native_support_warns(tiny_dataset, tmp_path, monkeypatch, capsys) -> None:
    from ratmir.engine import trainer

    monkeypatch.setattr(trainer, "bf16_is_fast", lambda device: False)
    train(smoke(tiny_dataset, "train.amp=bf16", "train.iterations=4"), out=tmp_path / "run", progress=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if "bf16" in line]
    assert len(lines) == 1 and lines[0].startswith("Warning: train.amp is bf16")


def test_monitor_gain_and_check_point() -> None:
    m = TakeoffMonitor(iterations=40, window=5)
    assert m.check_at == 10
    for _ in range(10):
        m.add(loss=1.0, identity=1.0)
    assert m.stalled(10) and not m.stalled(9) and not m.stalled(11)
    worse = TakeoffMonitor(iterations=4)
    worse.add(loss=2.0, identity=1.0)
    assert worse.stalled(1)  # -6 dB: not better than the identity either
    better = TakeoffMonitor(iterations=4)
    better.add(loss=0.9, identity=1.0)
    assert not better.stalled(1)  # +0.9 dB: learning
    m.add(loss=0.5, identity=1.0)
    assert m.log_record() == pytest.approx({"identity_loss": 1.0, "loss_vs_identity": 10.5 / 11})  # per iteration
    assert m.log_record() == {}  # reset after each log line
    assert gain_db(loss=10 ** (-STALL_DB / 20), identity=1.0) == pytest.approx(STALL_DB)


def test_check_waits_for_the_warmup() -> None:
    # a warm-up delays the take-off: the check moves past it, never past the run's end
    assert check_point(iterations=600) == 150
    assert check_point(iterations=600, warmup=60) == 2 * 60 + TAKEOFF_AFTER_WARMUP
    assert check_point(iterations=4000, warmup=60) == 1000  # a long run keeps its quarter
    assert check_point(iterations=150, warmup=60) == 150
    warmed = TakeoffMonitor(iterations=600, warmup=60, window=5)
    for _ in range(220):
        warmed.add(loss=1.1, identity=1.0)  # above the identity: the dip after a warm-up
    assert not warmed.stalled(150) and warmed.stalled(220)


def test_layer_scale_sizes_by_stage() -> None:
    model = build_model("rat", in_channels=1, width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), middle_layers=2,
                        layers_per_group=1, num_heads=2, identity_init=True)
    sizes = layer_scale_sizes(model)
    assert set(sizes) == {"lambda_ra/middle0", "lambda_ra/middle1", "lambda_wa/middle0", "lambda_wa/middle1",
                          "beta/enc0", "beta/enc1", "beta/dec0", "beta/dec1", "gamma/enc0", "gamma/enc1",
                          "gamma/dec0", "gamma/dec1", "ending"}
    assert all(v == 0 for v in sizes.values())
    with torch.no_grad():
        model.middle_blks[1].layers[0].lambda_wa.fill_(-0.5)
    assert layer_scale_sizes(model)["lambda_wa/middle1"] == pytest.approx(0.5)
    assert kind_means(layer_scale_sizes(model))["lambda_wa"] == pytest.approx(0.25)  # mean of its 2 groups
    assert layer_scale_sizes(build_model("dncnn", in_channels=1, features=4, depth=3)) == {}


def test_warmup_then_cosine() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = build_scheduler(opt, iterations=20, lr_min=1e-6, warmup=4)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert lrs[4] == pytest.approx(1e-3) and all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-6)
    plain = build_scheduler(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3), iterations=20,
                            lr_min=1e-6, warmup=0)
    assert isinstance(plain, torch.optim.lr_scheduler.CosineAnnealingLR)
    # a resumed run (optimizer and scheduler state loaded into new ones) goes on with the same lrs
    for cut in (2, 4, 9):
        opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        first = build_scheduler(opt2, iterations=20, lr_min=1e-6, warmup=4)
        for _ in range(cut):
            opt2.step()
            first.step()
        opt3 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        resumed = build_scheduler(opt3, iterations=20, lr_min=1e-6, warmup=4)
        opt3.load_state_dict(opt2.state_dict())
        resumed.load_state_dict(first.state_dict())
        tail = []
        for _ in range(20 - cut):
            tail.append(opt3.param_groups[0]["lr"])
            opt3.step()
            resumed.step()
        assert tail == pytest.approx(lrs[cut:])


def test_warmup_must_fit_the_run(tiny_dataset) -> None:
    from ratmir.engine import ConfigError

    with pytest.raises(ConfigError, match=r"optim.warmup must be >= 0 and below train.iterations \(40\), got 40"):
        smoke(tiny_dataset, "optim.warmup=40")
    with pytest.raises(ConfigError, match=r"optim.betas must be two values in \[0, 1\), got \[1.0, 0.999\]"):
        smoke(tiny_dataset, "optim.betas=[1.0, 0.999]")
