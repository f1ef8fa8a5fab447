"""NAFBlock (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022).

The encoder and decoder blocks of RAT. ``beta`` and ``gamma`` start at zero, so a new block is
the identity.

In inference on CPU, large inputs go through the block in horizontal strips of a few rows
(:func:`~ratmir.models.layers.strip_rows`), so that each strip's intermediates (up to 2C
channels) stay in the CPU cache. The channel attention's image-wide mean splits the block into
two passes. Same numbers up to float rounding of that mean.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import STRIP_BYTES, LayerNorm2d, SimpleGate, by_row_strips, strip_rows


class NAFBlock(nn.Module):
    """[B, C, H, W] -> [B, C, H, W].

    ``strip_bytes``: inference strip size (see :func:`~ratmir.models.layers.strip_rows`); 0
    turns strips off. It changes speed and peak memory, not results.
    """

    def __init__(self, channels: int, *, dw_expand: int = 2, ffn_expand: int = 2,
                 strip_bytes: int = STRIP_BYTES) -> None:
        super().__init__()
        dw = channels * dw_expand
        self.conv1 = nn.Conv2d(channels, dw, kernel_size=1)
        self.conv2 = nn.Conv2d(dw, dw, kernel_size=3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, channels, kernel_size=1)
        # Simplified channel attention; index 1 keeps the reference's state-dict key `sca.1`.
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, kernel_size=1))
        self.sg = SimpleGate()
        ffn = channels * ffn_expand
        self.conv4 = nn.Conv2d(channels, ffn, kernel_size=1)
        self.conv5 = nn.Conv2d(ffn // 2, channels, kernel_size=1)
        self.norm1 = LayerNorm2d(channels)
        self.norm2 = LayerNorm2d(channels)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.strip_bytes = strip_bytes

    def forward(self, inp: Tensor) -> Tensor:
        rows = strip_rows(inp, channels=self.conv1.out_channels, strip_bytes=self.strip_bytes)
        if rows < inp.shape[-2]:
            return self._forward_strips(inp, rows)
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        return self._second_half(inp, x, self.sca(x))

    def _second_half(self, inp: Tensor, x: Tensor, scale: Tensor) -> Tensor:
        """Everything after the channel attention's mean: pointwise per pixel."""
        y = torch.addcmul(inp, self.conv3(x * scale), self.beta)  # inp + x * beta in one pass
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return torch.addcmul(y, x, self.gamma)

    def _forward_strips(self, inp: Tensor, rows: int) -> Tensor:
        """The same block, ``rows`` image rows at a time (inference only)."""
        h, w = inp.shape[-2:]
        sums = []

        def first_half(rs: slice) -> Tensor:
            # sg(dwconv(conv1(norm1(inp)))) on rows rs, from rows a0:a1 with a 1-row halo for
            # the 3x3 depthwise conv; its zero-padded output rows at the halo are dropped
            a0, a1 = max(0, rs.start - 1), min(h, rs.stop + 1)
            t = self.conv2(self.conv1(self.norm1(inp[:, :, a0:a1])))
            t = self.sg(t[:, :, rs.start - a0:rs.stop - a0])
            sums.append(t.sum((2, 3), keepdim=True, dtype=torch.promote_types(t.dtype, torch.float32)))
            return t

        x = by_row_strips(first_half, inp, rows=rows)
        scale = self.sca[1]((torch.stack(sums).sum(0) / (h * w)).to(x.dtype))
        return by_row_strips(lambda rs: self._second_half(inp[:, :, rs], x[:, :, rs], scale), inp, rows=rows)
