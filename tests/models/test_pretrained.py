from __future__ import annotations

import json

import pytest
import torch

from ratmir.models import RAT, load_pretrained, read_metadata, save_pretrained


def test_roundtrip(tmp_path) -> None:
    model = RAT(width=8, enc_blocks=(1,), dec_blocks=(1,), middle_layers=1, layers_per_group=1,
                num_heads=2, in_channels=3, attention="window").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    path = save_pretrained(model, tmp_path / "sub" / "rat.safetensors", metadata={"task": "pathology"})
    meta = read_metadata(path)
    assert meta["task"] == "pathology" and json.loads(meta["config"]) == model.config
    loaded = load_pretrained(path).eval()
    assert loaded.config == model.config
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert load_pretrained(path, attention_backend="dense").attention_backend == "dense"
    assert not list(path.parent.glob("*.tmp"))


def test_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_pretrained(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_pretrained(bad)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(other))
    with pytest.raises(ValueError, match="not written by ratmir"):
        load_pretrained(other)
    with pytest.raises(TypeError, match="ratmir model"):
        save_pretrained(torch.nn.Linear(1, 1), tmp_path / "x.safetensors")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        save_pretrained(RAT(width=8, num_heads=2, middle_layers=0), tmp_path / "y.safetensors", metadata={"a": 1})


def test_model_file_readable_by_others_under_umask_022(tmp_path) -> None:
    import os
    import stat

    model = RAT(width=8, enc_blocks=(1,), dec_blocks=(1,), middle_layers=1, layers_per_group=1,
                num_heads=2, in_channels=1, attention="window")
    old = os.umask(0o022)
    try:
        path = save_pretrained(model, tmp_path / "model.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
