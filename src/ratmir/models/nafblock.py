"""NAFBlock (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022).

The encoder and decoder blocks of RAT. ``beta`` and ``gamma`` start at zero, so a new block is
the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import LayerNorm2d, SimpleGate


class NAFBlock(nn.Module):
    """[B, C, H, W] -> [B, C, H, W]."""

    def __init__(self, channels: int, *, dw_expand: int = 2, ffn_expand: int = 2) -> None:
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

    def forward(self, inp: Tensor) -> Tensor:
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = torch.addcmul(inp, x, self.beta)  # inp + x * beta in one pass over memory
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return torch.addcmul(y, x, self.gamma)
