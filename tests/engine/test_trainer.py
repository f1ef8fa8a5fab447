from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ratmir.engine import ConfigError, load_config, train
from ratmir.engine.checkpoint import atomic_save, load_checkpoint
from ratmir.models import load_pretrained

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def smoke(root: Path, *extra: str):
    return load_config(SMOKE, overrides=[f"data.root={root}", *extra])


def test_smoke_training_end_to_end(tiny_dataset, tmp_path) -> None:
    run = tmp_path / "run"
    result = train(smoke(tiny_dataset), out=run, progress=False)
    assert result.iterations == 40 and result.resumed_from == 0
    for name in ("config.yaml", "checkpoints/last.pt", "checkpoints/best.pt", "model.safetensors", "metrics.jsonl"):
        assert (run / name).exists(), name
    assert list((run / "tensorboard").iterdir())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if "loss" in r] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert [r["iteration"] for r in records if "val_psnr" in r] == [20, 40]
    model = load_pretrained(run / "model.safetensors")
    assert model.config["width"] == 8
    # a finished run resumes to nothing new
    again = train(smoke(tiny_dataset), out=run, progress=False)
    assert again.resumed_from == 40 and again.iterations == 40


def _same_weights(a: Path, b: Path) -> None:
    ma, mb = load_pretrained(a / "model.safetensors"), load_pretrained(b / "model.safetensors")
    for (k, x), y in zip(ma.state_dict().items(), mb.state_dict().values()):
        assert torch.equal(x, y), k


def test_resume_after_crash_equals_uninterrupted(tiny_dataset, tmp_path, monkeypatch) -> None:
    from ratmir.engine import trainer

    train(smoke(tiny_dataset), out=tmp_path / "full", progress=False)
    real_save = trainer.atomic_save

    def crash_after_20(obj, path):
        real_save(obj, path)
        if Path(path).name == "last.pt" and obj["iteration"] == 20:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(trainer, "atomic_save", crash_after_20)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(smoke(tiny_dataset), out=tmp_path / "cut", progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    result = train(smoke(tiny_dataset), out=tmp_path / "cut", progress=False)
    assert result.resumed_from == 20
    _same_weights(tmp_path / "full", tmp_path / "cut")


@pytest.mark.slow
def test_kill_9_then_resume_matches(tiny_dataset, tmp_path) -> None:
    """A real `kill -9` of `ratmir train` mid-run; the same command then finishes the run."""
    cmd = [sys.executable, "-m", "ratmir", "train", str(SMOKE), "--out", str(tmp_path / "killed"),
           "--set", f"data.root={tiny_dataset}", "--set", "train.iterations=60", "--no-progress"]
    ref = subprocess.run([*cmd[:6], str(tmp_path / "ref"), *cmd[7:]], capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere after the first checkpoint
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "model.safetensors").exists()  # it really died mid-run
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _same_weights(tmp_path / "ref", tmp_path / "killed")


def test_refuses_other_config_unless_forced(tiny_dataset, tmp_path) -> None:
    run = tmp_path / "run"
    train(smoke(tiny_dataset, "train.iterations=5"), out=run, progress=False)
    with pytest.raises(ConfigError, match=r"different config \(optim.lr: 0.0002 -> 0.001\)"):
        train(smoke(tiny_dataset, "train.iterations=5", "optim.lr=1e-3"), out=run, progress=False)
    result = train(smoke(tiny_dataset, "train.iterations=5", "optim.lr=1e-3"), out=run, force=True, progress=False)
    assert result.resumed_from == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a ratmir run folder"):
        train(smoke(tiny_dataset), out=tmp_path / "other", progress=False)


def test_bad_setups(tiny_dataset, tmp_path) -> None:
    with pytest.raises(ConfigError, match="in_channels is 3 but the dataset has 1"):
        train(smoke(tiny_dataset, "model.options.in_channels=3"), out=tmp_path / "a", progress=False)
    with pytest.raises(FileNotFoundError, match="ratmir prepare"):
        train(smoke(tmp_path / "nowhere"), out=tmp_path / "b", progress=False)
    with pytest.raises(ConfigError, match="prepared for 'ct'"):
        train(smoke(tiny_dataset, "task=pet"), out=tmp_path / "c", progress=False)


def test_options_bf16_ema_clip(tiny_dataset, tmp_path) -> None:
    cfg = smoke(tiny_dataset, "train.iterations=4", "train.amp=bf16", "train.ema=0.9", "optim.grad_clip=0.1",
                "train.val_every=4")
    result = train(cfg, out=tmp_path / "run", progress=False)
    assert result.best is not None and result.best["iteration"] == 4
    ema = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["ema"]
    assert ema is not None and int(ema["n_averaged"]) == 4


def test_atomic_save_keeps_previous_on_failure(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"iteration": 1}, path)

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_save({"iteration": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["iteration"] == 1
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process(tiny_dataset, tmp_path) -> None:
    """torchrun with 2 CPU ranks x batch 1 == one process x batch 2 (plain L1: no batch-wide weights)."""
    common = [str(SMOKE), "--set", f"data.root={tiny_dataset}", "--set", "train.iterations=6",
              "--set", "loss.name=l1", "--set", "train.val_every=6", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                          "-m", "ratmir", "train", *common, "--out", str(tmp_path / "ddp"),
                          "--set", "data.batch_size=1"], capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "ratmir", "train", *common, "--out", str(tmp_path / "one"),
                             "--set", "data.batch_size=2"], capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    a = load_pretrained(tmp_path / "ddp" / "model.safetensors")
    b = load_pretrained(tmp_path / "one" / "model.safetensors")
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4, msg=k)


@pytest.mark.slow
def test_torch_compile_option(tiny_dataset, tmp_path) -> None:
    """train.compile wraps the model in torch.compile (inductor on CPU needs a C++ compiler)."""
    cfg = smoke(tiny_dataset, "train.iterations=2", "train.val_every=2", "train.compile=true",
                "model.name=dncnn", "model.options={features: 4, depth: 3}")
    result = train(cfg, out=tmp_path / "run", progress=False)
    assert result.iterations == 2 and (tmp_path / "run" / "model.safetensors").is_file()


def test_validation_uses_val_and_test_only_with_a_warning(tiny_dataset, tmp_path) -> None:
    """best.pt is chosen on the 'val' split (carved from the training subjects) by default;
    the test split only when asked for, with a warning; a dataset without the split is refused."""
    from ratmir.engine.trainer import _validation_set

    assert smoke(tiny_dataset).data.val_split == "val"
    def val_set(split: str):
        return _validation_set(smoke(tiny_dataset, f"data.val_split={split!r}"))

    assert val_set("val").names == ["val00"]
    assert val_set("") is None
    with pytest.warns(UserWarning, match="chosen on the test images"):
        assert val_set("test").split == "test"
    manifest = json.loads((tiny_dataset / "dataset.json").read_text())
    del manifest["splits"]["val"]
    (tiny_dataset / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="prepare again"):
        train(smoke(tiny_dataset), out=tmp_path / "run", progress=False)


def _first_loss(run: Path) -> float:
    return next(json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
                if "loss" in json.loads(line))


def test_init_fine_tunes_from_saved_weights(tiny_dataset, tmp_path) -> None:
    base = train(smoke(tiny_dataset, "optim.lr=2.0e-3"), out=tmp_path / "base", progress=False).run
    last = [json.loads(line)["loss"] for line in (base / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)][-1]
    short = ("train.iterations=5", "train.val_every=5")
    scratch = train(smoke(tiny_dataset, *short), out=tmp_path / "scratch", progress=False).run
    tuned = train(smoke(tiny_dataset, *short, f"model.init={base}"), out=tmp_path / "tuned", progress=False).run
    # the fine-tuned run starts where the first one ended, not where a fresh one starts
    assert _first_loss(tuned) < 0.5 * _first_loss(scratch)
    assert abs(_first_loss(tuned) - last) < 0.5 * abs(_first_loss(scratch) - last)
    assert load_config(tuned / "config.yaml").model.init == str(base)


def test_init_with_other_options_is_one_line_and_touches_nothing(tiny_dataset, tmp_path) -> None:
    base = train(smoke(tiny_dataset, "train.iterations=5", "train.val_every=5"), out=tmp_path / "base",
                 progress=False).run
    cfg = smoke(tiny_dataset, "train.iterations=5", f"model.init={base / 'model.safetensors'}",
                "model.options={width: 16, enc_blocks: [1, 1], dec_blocks: [1, 1], middle_layers: 2, "
                "layers_per_group: 1, num_heads: 2}")
    with pytest.raises(ConfigError, match=r"model.init: .*width 8 vs 16") as err:
        train(cfg, out=tmp_path / "other", progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "other").exists()
    with pytest.raises(ConfigError, match="model.init: no model weights"):
        train(smoke(tiny_dataset, "model.init=no-such-model"), out=tmp_path / "missing", progress=False)
