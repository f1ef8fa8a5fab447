"""A small SwinIR-style window transformer (Liang et al., ICCVW 2021) as a baseline.

Shallow 3x3 conv -> residual groups of window-attention layers (windows shifted by half a
window every other layer) each closed by a 3x3 conv -> 3x3 conv + residual -> 3x3 conv;
output = input + residual. Ignores ``regions``.

Shifted windows use the grouped attention of RAT: a cyclic shift with Swin's mask is the same
as partitioning the image into windows offset by half a window, with partial windows at the
borders, so both layer types are "attention within groups" on label maps of window indices.
Differences from SwinIR, kept for size: no relative position bias, no patch-embedding LN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .attention import RegionAttention
from .base import RestorationModel, pad_to_multiple
from .grouped_attention import TokenGroups, plan_groups
from .layers import ConvMLP, LayerNorm2d


def window_groups(b: int, h: int, w: int, *, window: int, shift: int, device: torch.device) -> TokenGroups:
    """Groups of tokens in windows of ``window`` pixels offset by ``shift`` (partial at borders)."""
    rows = (torch.arange(h, device=device) + shift) // window
    cols = (torch.arange(w, device=device) + shift) // window
    labels = rows[:, None] * (w // window + 2) + cols[None, :]
    return plan_groups(labels.reshape(1, -1).expand(b, -1))


class _SwinLayer(nn.Module):
    def __init__(self, dim: int, *, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-5)
        self.attn = RegionAttention(dim, num_heads=num_heads, scale=(dim // num_heads) ** -0.5)
        self.norm2 = LayerNorm2d(dim, eps=1e-5)
        self.mlp = ConvMLP(dim, hidden=int(dim * mlp_ratio))

    def forward(self, x: Tensor, groups: TokenGroups) -> Tensor:
        x = x + self.attn(self.norm1(x), groups, backend="sparse")
        return x + self.mlp(self.norm2(x))


class SwinIRLite(RestorationModel):
    architecture = "swinir"

    def __init__(self, *, in_channels: int = 1, dim: int = 48, depths: Sequence[int] = (4, 4),
                 num_heads: int = 6, window_size: int = 8, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("dim", dim), ("num_heads", num_heads),
                            ("window_size", window_size)):
            check_positive_int(name, value)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self._set_config(in_channels=in_channels, dim=dim, depths=tuple(depths), num_heads=num_heads,
                         window_size=window_size, mlp_ratio=float(mlp_ratio))
        self.size_multiple = window_size
        self.conv_first = nn.Conv2d(in_channels, dim, 3, padding=1)
        self.groups = nn.ModuleList(
            nn.ModuleList(_SwinLayer(dim, num_heads=num_heads, mlp_ratio=mlp_ratio) for _ in range(d)) for d in depths
        )
        self.group_convs = nn.ModuleList(nn.Conv2d(dim, dim, 3, padding=1) for _ in depths)
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv_last = nn.Conv2d(dim, in_channels, 3, padding=1)

    def _restore(self, x: Tensor, regions: Tensor | None) -> Tensor:
        h, w = x.shape[-2:]
        inp, _, _ = pad_to_multiple(x, self.size_multiple)
        b, _, hp, wp = inp.shape
        ws = self.size_multiple
        plans = [window_groups(b, hp, wp, window=ws, shift=s, device=x.device) for s in (0, ws // 2)]
        feat = self.conv_first(inp)
        z = feat
        for layers, conv in zip(self.groups, self.group_convs):
            shortcut = z
            for i, layer in enumerate(layers):
                z = layer(z, plans[i % 2])
            z = conv(z) + shortcut
        z = self.conv_after_body(z) + feat
        return (self.conv_last(z) + inp)[..., :h, :w]
