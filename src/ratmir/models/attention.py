"""The two attention sub-layers of a RAT layer.

Both scale logits by ``num_heads ** -0.5`` (not ``head_dim ** -0.5``), as the reference does,
and split channels head-major (``(head c)``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .grouped_attention import TokenGroups, attention_dtype, grouped_attention_packed


class RegionAttention(nn.Module):
    """Multi-head self-attention among tokens of the same group (R-MSA).

    Which tokens form a group is decided by the caller: regions (R-MSA), windows (W-MSA) or a
    single group per image (global MSA). Parameters: 1x1-conv ``qkv`` and ``project_out``.
    ``scale`` defaults to the reference's ``num_heads ** -0.5``.
    """

    def __init__(self, channels: int, *, num_heads: int, mask_value: float = -1000.0,
                 scale: float | None = None) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.mask_value = mask_value
        self.scale = num_heads**-0.5 if scale is None else scale
        self.qkv = nn.Conv2d(channels, channels * 3, kernel_size=1)
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor, groups: TokenGroups, *, backend: str) -> Tensor:
        """x [B, C, H, W], groups over the B x H*W tokens -> [B, C, H, W].

        Token-major inside: for a channels-last ``x`` the qkv conv's output is already
        [B, H, W, 3, heads, d] in memory, and the result goes back without a transpose.
        """
        b, c, h, w = x.shape
        qkv = self.qkv(x).permute(0, 2, 3, 1).reshape(b * h * w, 3, self.num_heads, c // self.num_heads)
        out = grouped_attention_packed(qkv, groups, scale=self.scale, backend=backend, mask_value=self.mask_value)
        out = out.reshape(b, h, w, c).permute(0, 3, 1, 2)  # channels-last [B, C, H, W]
        return self.project_out(out)


class WindowAttention(nn.Module):
    """Multi-head self-attention in non-overlapping, non-shifted windows (W-MSA).

    H and W must be multiples of ``window_size``. Parameters: linear ``qkv`` and ``proj_out``.
    """

    def __init__(self, channels: int, *, num_heads: int, window_size: int) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv = nn.Linear(channels, channels * 3)
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, C, H, W] -> [B, C, H, W]."""
        b, c, h, w = x.shape
        s = self.window_size
        assert h % s == 0 and w % s == 0, "the caller pads to a multiple of the window size"
        win = x.reshape(b, c, h // s, s, w // s, s).permute(0, 2, 4, 3, 5, 1).reshape(-1, s * s, c)
        qkv = self.qkv(win).reshape(win.shape[0], s * s, 3, self.num_heads, c // self.num_heads)
        with attention_dtype(qkv.device, qkv.dtype) as compute:
            q, k, v = qkv.to(compute).permute(2, 0, 3, 1, 4)  # each [B*nW, heads, s*s, d]
            out = F.scaled_dot_product_attention(q, k, v, scale=self.num_heads**-0.5).to(qkv.dtype)
        out = self.proj_out(out.transpose(1, 2).reshape(win.shape[0], s * s, c))
        out = out.reshape(b, h // s, w // s, s, s, c).transpose(2, 3).reshape(b, h, w, c)
        return out.permute(0, 3, 1, 2)  # channels-last [B, C, H, W]
