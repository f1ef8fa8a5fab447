"""Inference precision: float32 (exact to the reference) or bfloat16 autocast (faster where the
CPU or GPU computes bf16 natively).

bf16 runs the convolutions, linear layers and attention in bfloat16 under ``torch.autocast``;
parameters stay float32, layer norms compute in float32 (``LayerNorm2d``), and the residual
stream is promoted back to float32 by the float32 layer scales, so the error stays small. Which
precision ``"auto"`` gives, and the measurement behind it, is in docs/decisions.md.
"""

from __future__ import annotations

import contextlib

import torch

from .._checks import check_choice

PRECISIONS = ("auto", "fp32", "bf16")


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 matrix products natively (AVX-512 BF16 / AMX on CPU,
    compute capability >= 8.0 on CUDA)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``"auto"`` -> ``"bf16"`` where :func:`bf16_is_fast`, else ``"fp32"``; others unchanged."""
    check_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    return precision


def inference_precision(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """Context to run a model's forward pass at ``precision`` on ``device``: bf16 autocast or
    nothing (fp32)."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
