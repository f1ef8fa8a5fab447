"""Crash-safe checkpoint files: written to a temporary file in the same folder, flushed to
disk, then renamed over the old one — a crash or a full disk leaves the previous file intact."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .._files import atomic_path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable checkpoint: {type(err).__name__}: {err}") from err
