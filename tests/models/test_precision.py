from __future__ import annotations

import pytest
import torch

from ratmir.models.precision import bf16_is_fast, inference_precision, resolve_precision


def test_resolve_precision_auto_follows_the_hardware_and_names_the_choices() -> None:
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if bf16_is_fast("cpu") else "fp32")
    assert resolve_precision("auto", "meta") == "fp32"
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\), got 'fp16'"):
        resolve_precision("fp16", "cpu")


def test_inference_precision_turns_autocast_on_for_bf16_only() -> None:
    x = torch.randn(4, 4)
    with inference_precision("bf16", "cpu"):
        assert (x @ x).dtype == torch.bfloat16
    with inference_precision("fp32", "cpu"):
        assert (x @ x).dtype == torch.float32
