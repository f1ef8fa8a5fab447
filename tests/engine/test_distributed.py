"""torchrun set-up without torchrun: device per LOCAL_RANK, the process-group timeout, sharded validation."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
import torch

from ratmir.data import PairedDataset
from ratmir.engine import distributed
from ratmir.engine.distributed import DistInfo, all_reduce_sum, init_distributed, pick_device
from ratmir.engine.validation import validate_model, validation_sums
from ratmir.models import RAT

RANK1 = DistInfo(rank=1, world_size=2, local_rank=1)


def test_one_gpu_per_local_rank() -> None:
    single = DistInfo()
    assert pick_device("cuda:1", single, cuda_available=True) == torch.device("cuda", 1)
    assert pick_device("cuda", RANK1, cuda_available=True) == torch.device("cuda", 1)
    assert pick_device("auto", RANK1, cuda_available=True) == torch.device("cuda", 1)
    assert pick_device("auto", RANK1, cuda_available=False) == torch.device("cpu")
    assert pick_device("cpu", RANK1, cuda_available=True) == torch.device("cpu")
    with pytest.warns(UserWarning, match="rank 1 uses cuda:1 .*LOCAL_RANK"):
        assert pick_device("cuda:0", RANK1, cuda_available=True) == torch.device("cuda", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_device("cuda:1", RANK1, cuda_available=True) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda:0", single, cuda_available=False)


def test_process_group_gets_the_configured_timeout(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    info, device = init_distributed("cpu", timeout_s=42)
    assert info == RANK1 and info.enabled and device == torch.device("cpu")
    assert calls == [{"backend": "gloo", "timeout": timedelta(seconds=42)}]


def test_one_process_under_torchrun_uses_the_process_group(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kwargs: calls.append(kwargs))
    for name, value in (("WORLD_SIZE", "1"), ("RANK", "0"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1")):
        monkeypatch.setenv(name, value)
    info, _ = init_distributed("cpu")
    assert info.launched and info.enabled and len(calls) == 1
    monkeypatch.delenv("MASTER_ADDR")
    monkeypatch.delenv("WORLD_SIZE")
    info, _ = init_distributed("cpu")  # a plain process
    assert not info.enabled and len(calls) == 1


def test_validation_shards_add_up_to_the_whole(tiny_dataset) -> None:
    dataset = PairedDataset(tiny_dataset, "test")
    torch.manual_seed(0)
    model = RAT(width=8, enc_blocks=(1,), dec_blocks=(1,), middle_layers=1, layers_per_group=1, num_heads=2)
    cpu = torch.device("cpu")
    n = len(dataset)
    assert n >= 2
    whole = validate_model(model, dataset, device=cpu)
    world = n + 1  # one rank more than images: the last one scores nothing
    shards = [validation_sums(model, dataset, device=cpu, rank=r, world_size=world) for r in range(world)]
    assert [s["count"] for s in shards] == [1] * n + [0]
    for key in ("psnr", "ssim"):
        assert sum(s[key] for s in shards) / n == pytest.approx(whole[key], rel=1e-12)
    first = validate_model(model, dataset, device=cpu, max_images=1)
    assert first["psnr"] == pytest.approx(shards[0]["psnr"], rel=1e-12)
    assert all_reduce_sum([1.5, 2.0], DistInfo(), device=cpu) == [1.5, 2.0]
    with pytest.raises(ValueError, match="validation split is empty"):
        validate_model(model, dataset, device=cpu, max_images=0)


def test_run_written_before_dist_timeout_existed_still_resumes(tiny_dataset, tmp_path) -> None:
    import yaml

    from ratmir.engine import load_config
    from ratmir.engine.trainer import prepare_run_dir

    run = tmp_path / "run"
    config = load_config(None, overrides=[f"data.root={tiny_dataset}"])
    prepare_run_dir(run, config, force=False)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["train"]["dist_timeout_s"]  # as an older ratmir wrote it
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    prepare_run_dir(run, config, force=False)  # no "different config"
    changed = load_config(None, overrides=[f"data.root={tiny_dataset}", "train.dist_timeout_s=60"])
    with pytest.raises(Exception, match=r"train.dist_timeout_s: 1800.0 -> 60.0"):
        prepare_run_dir(run, changed, force=False)
