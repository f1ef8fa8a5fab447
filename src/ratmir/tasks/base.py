"""Shared pieces of the three tasks: input checks, the affine-and-clip normalisation, the
degraded-pair result and the parameter record.

Every degradation returns a :class:`DegradedPair` whose ``record`` is a JSON-serialisable dict
of every parameter that produced it (the seed and the versions of the libraries that did the
numerical work included), so a dataset can be rebuilt or audited from ``dataset.json`` alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def library_versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (``"not installed"`` where absent), for records."""
    found: dict[str, str] = {}
    for package in ("numpy", *packages):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def config_record(config: object) -> dict[str, Any]:
    """The fields of a (frozen) dataclass config as a plain, JSON-serialisable dict."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def check_seed(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"seed must be an int, got {type(value).__name__} ({value!r})")
    if value < 0:
        raise ValueError(f"seed must be >= 0, got {value}")
    return value


def check_array(
    x: object,
    *,
    name: str,
    ndim: int,
    channels: int | None = None,
    min_size: int = 1,
    allow_uint8: bool = False,
) -> np.ndarray:
    """Check a finite numpy image of ``ndim`` dimensions; return it as float32 (or uint8).

    ``channels`` (with ``ndim == 3``) is the expected size of the last, channel axis.
    ``min_size`` is the smallest allowed spatial size (height and width).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != ndim:
        layout = "[H, W]" if ndim == 2 else "[H, W, C]"
        raise ValueError(f"{name} must have {ndim} dimensions {layout}, got shape {x.shape}")
    if channels is not None and x.shape[-1] != channels:
        raise ValueError(f"{name} must have {channels} channels (last axis), got shape {x.shape}")
    if x.shape[0] < min_size or x.shape[1] < min_size:
        raise ValueError(
            f"{name} must be at least {min_size}x{min_size} pixels, got shape {x.shape}"
        )
    if x.dtype == np.uint8 and allow_uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        allowed = "uint8 or floating" if allow_uint8 else "floating"
        raise TypeError(f"{name} must have a {allowed} dtype, got {x.dtype}")
    if not np.isfinite(x).all():
        n_bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{name} contains {n_bad} NaN/Inf value(s); expected finite values")
    return x.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Normalisation:
    """Affine map of the physical range [``low``, ``high``] onto [0, 1], clipping outside.

    ``denormalise`` is the inverse on [0, 1]; values clipped by ``normalise`` do not come back.
    Works elementwise on numpy arrays and torch tensors alike, so the layout does not matter.
    """

    low: float
    high: float
    units: str

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"Normalisation needs high > low, got low={self.low}, high={self.high}")

    def normalise(self, x: ArrayT) -> ArrayT:
        scaled = (x - self.low) / (self.high - self.low)
        if isinstance(scaled, torch.Tensor):
            return scaled.clamp(0.0, 1.0)
        return np.clip(scaled, 0.0, 1.0).astype(np.float32, copy=False)

    def denormalise(self, y: ArrayT) -> ArrayT:
        x = y * (self.high - self.low) + self.low
        if isinstance(x, np.ndarray):
            return x.astype(np.float32, copy=False)
        return x

    def denormalise_(self, y: torch.Tensor) -> torch.Tensor:
        """:meth:`denormalise` of a float tensor in place; returns y."""
        return y.mul_(self.high - self.low).add_(self.low)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Normalisation:
        """Inverse of :meth:`record` (as stored in dataset.json and model metadata)."""
        if not isinstance(record, dict) or record.get("kind") != "affine_clip":
            kind = record.get("kind") if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"unknown normalisation record {kind!r}; expected kind 'affine_clip'")
        return cls(low=float(record["low"]), high=float(record["high"]), units=str(record["units"]))

    def record(self) -> dict[str, Any]:
        return {
            "kind": "affine_clip",
            "low": self.low,
            "high": self.high,
            "units": self.units,
            "maps_to": [0.0, 1.0],
        }


@dataclass(frozen=True)
class DegradedPair:
    """A high-quality image, its simulated low-quality counterpart and how it was made.

    ``hq`` and ``lq`` share shape, dtype (float32) and physical units; ``record`` is JSON-ready.
    """

    hq: np.ndarray
    lq: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)
