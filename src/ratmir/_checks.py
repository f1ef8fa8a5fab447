"""Input validation shared by the public entry points.

Every error names the argument, the expected value and the actual one, so a user can fix the
call without reading the source.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_image(x: object, *, name: str = "x", channels: int | None = None) -> Tensor:
    """Check a float image batch [B, C, H, W] that is finite and non-empty."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [B, C, H, W], got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have 4 dimensions [B, C, H, W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch: shape {tuple(x.shape)}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} has an empty spatial size: shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{name} must have {channels} channel(s), got {x.shape[1]} (shape {tuple(x.shape)})"
        )
    if not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {n_bad} NaN/Inf value(s); expected finite values")
    return x


def check_label_map(regions: object, *, like: Tensor, name: str = "regions") -> Tensor:
    """Check a region label map [B, H, W] matching image ``like`` [B, C, H, W].

    Integer tensors of any dtype are accepted; floating tensors are accepted only when every
    value is an integer (as in label maps read from NIfTI files). Returns an int64 tensor.
    """
    if not isinstance(regions, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor [B, H, W] of integer labels, got {type(regions).__name__}"
        )
    expected = (like.shape[0], like.shape[2], like.shape[3])
    if regions.dim() != 3 or tuple(regions.shape) != expected:
        raise ValueError(
            f"{name} must have shape [B, H, W] = {list(expected)} to match the image "
            f"{list(like.shape)}, got {list(regions.shape)}"
        )
    if regions.dtype == torch.bool or regions.is_complex():
        raise TypeError(f"{name} must hold integer labels, got dtype {regions.dtype}")
    if regions.is_floating_point():
        if not bool(torch.isfinite(regions).all()):
            raise ValueError(f"{name} contains NaN/Inf; expected integer labels")
        if not bool((regions == regions.round()).all()):
            bad = regions[regions != regions.round()].flatten()[:3].tolist()
            raise ValueError(f"{name} must hold integer labels, got non-integer values such as {bad}")
    return regions.to(device=like.device, dtype=torch.int64)


def check_number(name: str, value: object, *, low: float | None = None, high: float | None = None,
                 low_inclusive: bool = True) -> float:
    """Return ``value`` as a float if it is a real number within [low, high], else raise.

    ``low_inclusive=False`` makes the lower bound strict (``value > low``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (not low_inclusive and value == low)):
        relation = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {relation} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def parse_device(name: str, value: object) -> torch.device:
    """``value`` as a ``torch.device`` (whether or not it exists here), else ``ValueError``."""
    try:
        return torch.device(value)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} must be a torch device such as 'cpu', 'cuda' or 'cuda:1', got {value!r}") from None


def check_device(name: str, value: object) -> torch.device:
    """``value`` as a ``torch.device`` that exists on this machine, else ``ValueError`` (e.g.
    ``cuda`` where CUDA is not available, ``cuda:3`` on a 2-GPU machine, ``gpu``)."""
    device = parse_device(name, value)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} is {value!r} but CUDA is not available on this machine "
                             f"(torch {torch.__version__}); use 'cpu'")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"{name} is {value!r} but this machine has {count} CUDA device(s) (0 to {count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} is {value!r} but MPS is not available on this machine; use 'cpu'")
    return device
