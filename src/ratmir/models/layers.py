"""Small building blocks shared by RAT and the baselines."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of [B, C, H, W] (NAFNet's ``LayerNorm2d``).

    Uses the biased variance and ``eps`` inside the square root, as the reference does.
    """

    def __init__(self, channels: int, *, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """Split channels in two halves and multiply them: [B, 2C, H, W] -> [B, C, H, W]."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class ConvMLP(nn.Module):
    """Pointwise MLP on [B, C, H, W]: 1x1 conv, GELU, 1x1 conv."""

    def __init__(self, channels: int, *, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))
