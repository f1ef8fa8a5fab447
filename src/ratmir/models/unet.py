"""The NAFBlock U-Net shell shared by RAT and the NAFNet-style baseline.

Encoder level: NAFBlocks, then a 2x2 stride-2 conv doubling the channels. Decoder level: 1x1
conv (no bias) + PixelShuffle(2) halving the channels, sum with the skip, NAFBlocks. Attribute
names (``encoders``, ``downs``, ``ups``, ``decoders``) are the reference RAT's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .nafblock import NAFBlock


def build_encoder(width: int, blocks: Sequence[int]) -> tuple[nn.ModuleList, nn.ModuleList, int]:
    """(encoders, downs, channels at the bottleneck)."""
    encoders, downs = nn.ModuleList(), nn.ModuleList()
    chan = width
    for n in blocks:
        encoders.append(nn.Sequential(*(NAFBlock(chan) for _ in range(n))))
        downs.append(nn.Conv2d(chan, chan * 2, kernel_size=2, stride=2))
        chan *= 2
    return encoders, downs, chan


def build_decoder(chan: int, blocks: Sequence[int]) -> tuple[nn.ModuleList, nn.ModuleList]:
    """(ups, decoders) from ``chan`` bottleneck channels."""
    ups, decoders = nn.ModuleList(), nn.ModuleList()
    for n in blocks:
        ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, kernel_size=1, bias=False), nn.PixelShuffle(2)))
        chan //= 2
        decoders.append(nn.Sequential(*(NAFBlock(chan) for _ in range(n))))
    return ups, decoders


CHECKPOINT_MODES = ("none", "unet", "all")


def checkpoint_mode(value: bool | str) -> str:
    """Normalise a ``checkpointing`` option: False -> "none", True -> "all", or one of
    ``CHECKPOINT_MODES``."""
    if isinstance(value, bool):
        return "all" if value else "none"
    if value not in CHECKPOINT_MODES:
        raise ValueError(f"checkpointing must be a bool or one of {CHECKPOINT_MODES}, got {value!r}")
    return value


def maybe_checkpoint(fn: Callable[..., Tensor], *args, enabled: bool, **kwargs) -> Tensor:
    """``fn(*args, **kwargs)``, recomputed in backward instead of storing its activations when
    ``enabled`` and gradients are being recorded (activation checkpointing)."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False, **kwargs)
    return fn(*args, **kwargs)


def run_unet(module: nn.Module, x: Tensor, middle: Callable[[Tensor], Tensor], *, checkpointing: bool = False) -> Tensor:
    """intro -> encoders/downs -> middle -> ups/skips/decoders -> ending, on ``module``'s parts,
    in channels-last layout; ``checkpointing`` recomputes each NAFBlock in backward. Returns a
    contiguous (NCHW) tensor."""
    def blocks(seq: nn.Sequential, z: Tensor) -> Tensor:
        for block in seq:
            z = maybe_checkpoint(block, z, enabled=checkpointing)
        return z

    # Channels-last inside: 1x1 convs become plain matrix products, layer norms and attention
    # read channels contiguously (see ratmir.models.layers / attention). Same numbers.
    x = module.intro(x).contiguous(memory_format=torch.channels_last)
    skips = []
    for encoder, down in zip(module.encoders, module.downs):
        x = blocks(encoder, x)
        skips.append(x)
        x = down(x)
    x = middle(x)
    for decoder, up, skip in zip(module.decoders, module.ups, reversed(skips)):
        x = up(x)
        # in inference, add the skip in place: one full-size tensor less at the decoder's peak
        x = x.add_(skip) if not torch.is_grad_enabled() and x.dtype == skip.dtype else x + skip
        x = blocks(decoder, x)
    return module.ending(x).contiguous()
