"""Sizes of the zero-initialised layer scales, to see whether (and where) a network has left its start.

RAT and NAFNet blocks add their branches through per-channel scales that start at zero:
``beta`` and ``gamma`` in a NAFBlock, ``lambda_ra`` (region or window attention) and
``lambda_wa`` (window attention) in a RAT layer. While every scale is still ~0 the network is
the identity (plus the output convolution). :func:`layer_scale_sizes` reports the mean absolute
value of each kind of scale per stage, e.g.::

    {"lambda_ra/middle0": 0.0031, "lambda_wa/middle0": 0.0054, "beta/enc0": 0.0012, ..., "ending": 0.0009}

>>> import torch
>>> from ratmir.models.nafnet import NAFNet
>>> sizes = layer_scale_sizes(NAFNet(in_channels=1, width=8, enc_blocks=(1,), dec_blocks=(1,), middle_blocks=1))
>>> sorted(k for k in sizes if k.startswith("beta"))
['beta/dec0', 'beta/enc0', 'beta/middle']
>>> sizes["beta/enc0"]
0.0
"""

from __future__ import annotations

import re

import torch
from torch import nn

SCALE_NAMES = ("lambda_ra", "lambda_wa", "beta", "gamma")
# (parameter-name pattern, stage label): "{}" takes the index of the block list
_STAGES = ((re.compile(r"(?:^|\.)encoders\.(\d+)\."), "enc{}"), (re.compile(r"(?:^|\.)decoders\.(\d+)\."), "dec{}"),
           (re.compile(r"(?:^|\.)middle_blks\.(\d+)\."), "middle{}"),  # RAT: groups of RAT layers
           (re.compile(r"(?:^|\.)middle\.(\d+)\."), "middle"))  # NAFNet: one sequence of blocks


def _stage(name: str) -> str:
    """The stage of parameter ``name``: 'enc0', 'dec1', 'middle0' (a RAT group) or 'middle'."""
    for pattern, label in _STAGES:
        match = pattern.search(name)
        if match:
            return label.format(match.group(1))
    return "other"


@torch.no_grad()
def layer_scale_sizes(model: nn.Module) -> dict[str, float]:
    """Mean |value| of every layer-scale kind per stage (keys ``"<kind>/<stage>"``), plus the RMS
    of the output convolution's weight (``"ending"``) when the model has one. Empty for a model
    without layer scales (RED-CNN, DnCNN)."""
    sums: dict[str, list[float]] = {}
    for name, param in model.named_parameters():
        kind = name.rsplit(".", 1)[-1]
        if kind not in SCALE_NAMES:
            continue
        entry = sums.setdefault(f"{kind}/{_stage(name)}", [0.0, 0])
        entry[0] += float(param.detach().abs().sum())
        entry[1] += param.numel()
    sizes = {key: total / count for key, (total, count) in sorted(sums.items())}
    ending = getattr(model, "ending", None)
    if isinstance(ending, nn.Conv2d):
        sizes["ending"] = float(ending.weight.detach().pow(2).mean().sqrt())
    return sizes


def kind_means(sizes: dict[str, float]) -> dict[str, float]:
    """Mean over stages of each layer-scale kind in ``sizes`` (from :func:`layer_scale_sizes`),
    for the kinds it has: ``{"lambda_ra": ..., "lambda_wa": ..., "beta": ..., "gamma": ...}``."""
    per_kind: dict[str, list[float]] = {}
    for key, value in sizes.items():
        kind, _, stage = key.partition("/")
        if stage and kind in SCALE_NAMES:
            per_kind.setdefault(kind, []).append(value)
    return {kind: sum(v) / len(v) for kind in SCALE_NAMES if (v := per_kind.get(kind))}
