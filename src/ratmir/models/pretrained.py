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


# options that change how a model runs or starts, not what its weights mean: a fine-tuning run may differ in them
RUNTIME_OPTIONS = frozenset({"checkpointing", "attention_backend", "identity_init"})


def load_initial_weights(model: RestorationModel, path: str | os.PathLike, *, task: str | None = None) -> dict[str, str]:
    """Copy the weights saved at ``path`` into ``model`` (the start of a fine-tuning run); returns the
    file's metadata. The architecture, every option except :data:`RUNTIME_OPTIONS` and the task (when
    the file records one) must match; a mismatch raises ``ValueError`` naming each difference."""
    meta = read_metadata(path)
    saved = json.loads(meta["config"])
    differences = []
    if meta["architecture"] != model.architecture:
        differences.append(f"architecture {meta['architecture']!r} vs {model.architecture!r}")
    if task is not None and meta.get("task") not in (None, task):
        differences.append(f"task {meta['task']!r} vs {task!r}")
    mine = model.config
    differences += [f"{key} {saved.get(key)!r} vs {mine.get(key)!r}" for key in sorted(set(saved) | set(mine))
                    if key not in RUNTIME_OPTIONS and saved.get(key) != mine.get(key)]
    if differences:
        raise ValueError(f"{path} cannot start this model (saved vs configured: {'; '.join(differences)}); set "
                         "model.name and model.options to the saved model's (`ratmir models show NAME` lists them)")
    try:
        model.load_state_dict(load_file(str(path), device="cpu"))
    except RuntimeError as err:  # same options, other tensors: a file from another ratmir
        raise ValueError(f"{path} does not fit this model although its options match: {err}".splitlines()[0]) from err
    return meta
