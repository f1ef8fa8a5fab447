"""Load checkpoints saved by the authors' implementation of RAT.

The reference model's module names are kept in :class:`~ratmir.models.RAT`, so its state dict
loads as it is; the architecture (width, channels, depths, MLP ratio) is inferred from the
tensor shapes. ``num_heads`` and ``window_size`` leave no trace in the weights (the reference
fixes them at 8 and 4); pass them if a checkpoint was trained otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from .rat import RAT

_WRAPPER_KEYS = ("state_dict", "model", "net", "params", "model_state_dict")
_PREFIXES = ("module.", "_orig_mod.", "model.", "net.")


def from_reference(state_dict: Mapping[str, Any], **overrides: Any) -> RAT:
    """Build a :class:`RAT` matching a reference state dict and load it (strictly).

    Accepts a plain state dict, one nested under a common wrapper key (``"state_dict"``,
    ``"model"``, ...), and keys prefixed by ``module.`` (DataParallel/DDP) or ``_orig_mod.``
    (torch.compile). ``overrides`` are extra :class:`RAT` keyword arguments
    (``num_heads``, ``window_size``, ``attention_backend``, ...).
    """
    sd = _unwrap(state_dict)
    config = infer_reference_config(sd)
    config.update(overrides)
    model = RAT(**config)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(
            "state dict does not match the inferred RAT architecture "
            f"{config}: missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    return model


def infer_reference_config(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """RAT keyword arguments implied by the shapes of a reference state dict."""
    sd = _unwrap(state_dict)
    for key in ("intro.weight", "ending.weight"):
        if key not in sd:
            raise ValueError(
                f"not a RAT state dict: key {key!r} is missing (got {len(sd)} keys, e.g. {list(sd)[:3]})"
            )
    width, in_channels = sd["intro.weight"].shape[:2]
    enc = _count_blocks(sd, "encoders")
    dec = _count_blocks(sd, "decoders")
    groups = _indices(sd, r"middle_blks\.(\d+)\.")
    layers = _indices(sd, r"middle_blks\.0\.layers\.(\d+)\.") if groups else []
    config: dict[str, Any] = dict(
        in_channels=int(in_channels), width=int(width), enc_blocks=enc, dec_blocks=dec,
        layers_per_group=max(len(layers), 1), middle_layers=len(groups) * len(layers),
    )
    fc1 = "middle_blks.0.layers.0.mlp_ra.fc1.weight"
    if fc1 in sd:
        hidden, chan = sd[fc1].shape[:2]
        config["mlp_ratio"] = hidden / chan
    return config


def _count_blocks(sd: Mapping[str, Tensor], name: str) -> list[int]:
    levels = _indices(sd, rf"{name}\.(\d+)\.")
    return [len(_indices(sd, rf"{name}\.{lvl}\.(\d+)\.")) for lvl in range(len(levels))]


def _indices(sd: Mapping[str, Tensor], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for key in sd if (m := rx.match(key))})


def _unwrap(obj: Mapping[str, Any]) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    for key in _WRAPPER_KEYS:
        if key in obj and isinstance(obj[key], Mapping):
            return _unwrap(obj[key])
    sd = dict(obj)
    for prefix in _PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd
