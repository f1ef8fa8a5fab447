"""Save and load model weights as safetensors, with the architecture and its configuration in
the file's metadata (any registered model: RAT and the baselines)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .. import __version__
from .._files import atomic_path
from .base import RestorationModel
from .registry import build_model

_FORMAT = "ratmir.model"


def save_pretrained(model: RestorationModel, path: str | os.PathLike, *, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s weights and configuration to ``path`` (a ``.safetensors`` file).

    ``metadata`` adds string entries (e.g. the task's normalisation). The file is written to
    a temporary name and renamed, so an interrupted save never leaves a truncated file.
    """
    if not isinstance(model, RestorationModel):
        raise TypeError(f"model must be a ratmir model (RAT or a baseline), got {type(model).__name__}")
    path = Path(path)
    meta = {"format": _FORMAT, "ratmir_version": __version__, "architecture": model.architecture,
            "config": json.dumps(model.config)}
    for key, value in (metadata or {}).items():
        if not isinstance(value, str):
            raise TypeError(f"metadata[{key!r}] must be a str, got {type(value).__name__}")
        meta[key] = value
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a file written by :func:`save_pretrained`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err
    if meta.get("format") != _FORMAT or "config" not in meta or "architecture" not in meta:
        raise ValueError(f"{path} was not written by ratmir.models.save_pretrained (metadata format={meta.get('format')!r})")
    return meta


def load_pretrained(path: str | os.PathLike, *, map_location: str | torch.device = "cpu",
                    **overrides) -> RestorationModel:
    """Rebuild the model saved at ``path``; ``overrides`` change runtime options such as
    ``attention_backend``."""
    meta = read_metadata(path)
    config = json.loads(meta["config"])
    config.update(overrides)
    model = build_model(meta["architecture"], **config)
    model.load_state_dict(load_file(str(path), device=str(map_location)))
    return model.to(map_location)
