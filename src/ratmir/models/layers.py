"""Small building blocks shared by RAT and the baselines."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _LayerNorm2dFunction(torch.autograd.Function):
    """Channel LayerNorm on [B, C, H, W] that saves only the normalised tensor and 1/std for
    backward (autograd of the plain formula keeps several full-size intermediates).

    Computed in float32 (or float64) whatever the input dtype (as autocast runs ``layer_norm``): a bf16
    input is cast up, normalised, and the result cast back to bf16; the gradient likewise.
    Float32 inputs are computed exactly as before (the casts are no-ops)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))  # float64 stays float64
        mu = x32.mean(1, keepdim=True)
        centred = x32 - mu
        rstd = (centred.square().mean(1, keepdim=True) + eps).rsqrt()
        y = centred.mul_(rstd)
        ctx.save_for_backward(y, rstd, weight)
        out = torch.addcmul(bias.to(y.dtype).view(1, -1, 1, 1), y, weight.to(y.dtype).view(1, -1, 1, 1))
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        y, rstd, weight = ctx.saved_tensors
        grad32 = grad.to(y.dtype)
        g = grad32 * weight.to(y.dtype).view(1, -1, 1, 1)
        gx = rstd * (g - y * (g * y).mean(1, keepdim=True) - g.mean(1, keepdim=True))
        gw, gb = (grad32 * y).sum((0, 2, 3)), grad32.sum((0, 2, 3))
        return gx.to(grad.dtype), gw.to(weight.dtype), gb.to(weight.dtype), None


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of [B, C, H, W] (NAFNet's ``LayerNorm2d``).

    Biased variance and ``eps`` inside the square root, as the reference. A channels-last input
    (the layout RAT and NAFNet run in) has its channels innermost, so it goes through the fused
    ``F.layer_norm`` kernel on a [B, H, W, C] view; any other layout through a custom backward
    that keeps one full-size tensor per layer. Both compute in float32 for bf16/fp16 inputs and
    return the input's dtype.
    """

    def __init__(self, channels: int, *, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last):
            nhwc = x.permute(0, 2, 3, 1)  # a contiguous view
            if nhwc.dtype in (torch.float16, torch.bfloat16):
                nhwc = nhwc.float()
            out = F.layer_norm(nhwc, (x.shape[1],), self.weight.to(nhwc.dtype), self.bias.to(nhwc.dtype), self.eps)
            return out.to(x.dtype).permute(0, 3, 1, 2)
        return _LayerNorm2dFunction.apply(x, self.weight, self.bias, self.eps)


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
