from __future__ import annotations

import pytest
import torch

from ratmir.models import RAT, from_reference, infer_reference_config
from ratmir.models.reference import _unwrap


@pytest.mark.parametrize("backend", ["sparse", "dense"])
def test_reproduces_reference_vector(reference_vector: dict, backend: str) -> None:
    model = from_reference(reference_vector["state_dict"], attention_backend=backend).eval()
    with torch.no_grad():
        out = model(reference_vector["input"], reference_vector["label_map"])
    assert out.shape == reference_vector["output"].shape
    # float32, outputs up to ~64: measured max |difference| 5.7e-5 (sparse) and 4.8e-5 (dense) on
    # a 2-core x86 CPU, i.e. ~8 float32 ulps; 1e-4 leaves room for other summation orders.
    err = (out - reference_vector["output"]).abs().max().item()
    assert err < 1e-4, err


def test_semantics_matter(reference_vector: dict) -> None:
    """Global attention instead of region attention must break the match (~1.6 change)."""
    model = from_reference(reference_vector["state_dict"], attention="global").eval()
    with torch.no_grad():
        out = model(reference_vector["input"], reference_vector["label_map"])
    assert (out - reference_vector["output"]).abs().max().item() > 0.1


def test_inferred_config_of_vector(reference_vector: dict) -> None:
    cfg = infer_reference_config(reference_vector["state_dict"])
    ref = reference_vector["config"]
    assert cfg["width"] == ref["width"]
    assert cfg["in_channels"] == ref["img_channel"]
    assert cfg["enc_blocks"] == ref["enc_blk_nums"] and cfg["dec_blocks"] == ref["dec_blk_nums"]
    assert cfg["middle_layers"] == ref["middle_blk_num"]
    assert cfg["layers_per_group"] == ref["layers_per_group"]
    assert cfg["mlp_ratio"] == ref["mlp_ratio"]


def test_default_model_has_reference_key_layout(reference_dir) -> None:
    expected = {}
    for line in (reference_dir / "rat_reference_state_dict_keys.tsv").read_text().splitlines():
        key, shape = line.split("\t")
        expected[key] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    actual = {k: tuple(v.shape) for k, v in RAT().state_dict().items()}
    assert actual == expected


def test_wrapped_and_prefixed_checkpoints(reference_vector: dict) -> None:
    sd = reference_vector["state_dict"]
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}
    model = from_reference(wrapped)
    assert torch.equal(model.intro.weight, sd["intro.weight"])
    assert set(_unwrap(wrapped)) == set(sd)


def test_rejects_foreign_state_dicts(reference_vector: dict) -> None:
    with pytest.raises(ValueError, match="intro.weight"):
        from_reference({"conv.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="mapping"):
        from_reference([1, 2])  # type: ignore[arg-type]
    sd = dict(reference_vector["state_dict"])
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected keys"):
        from_reference(sd)
