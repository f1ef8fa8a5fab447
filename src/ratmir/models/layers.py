"""Small building blocks shared by RAT and the baselines."""

from __future__ import annotations

from collections.abc import Callable

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

    Biased variance and ``eps`` inside the square root, as the reference. An input with its
    channels innermost (channels-last, the layout RAT and NAFNet run in, or a row strip of it)
    goes through the fused ``F.layer_norm`` kernel on a [B, H, W, C] view; any other layout through a custom backward
    that keeps one full-size tensor per layer. Both compute in float32 for bf16/fp16 inputs and
    return the input's dtype.
    """

    def __init__(self, channels: int, *, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1:
            # channels innermost: channels-last, or a row strip of it (not contiguous for B > 1)
            nhwc = x.permute(0, 2, 3, 1)
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


STRIP_BYTES = 8 << 20  # inference: target size of a row strip's widest intermediate


def strip_rows(x: Tensor, *, channels: int, strip_bytes: int = STRIP_BYTES, multiple: int = 1) -> int:
    """Rows per strip for running a row-local computation on ``x`` [B, C, H, W] in inference.

    The full-resolution parts of the networks are memory-bound on CPU (a 64-channel 512^2
    float32 tensor is 64 MB): run strip by strip, a computation's intermediates stay in cache
    instead of making a round trip to memory per op. Rows are chosen so that ``channels``
    channels of a strip, in ``x``'s dtype, take about ``strip_bytes`` bytes; the result is a
    multiple of ``multiple``. Returns H (one piece: the plain computation) when autograd is recording, when
    ``strip_bytes`` <= 0, when one strip would hold the whole image, and off the CPU (a GPU gains
    nothing from it and would pay a kernel launch per op and strip).
    """
    h = x.shape[-2]
    if torch.is_grad_enabled() or strip_bytes <= 0 or x.device.type != "cpu":
        return h
    row_bytes = x.shape[0] * channels * x.shape[-1] * x.element_size()
    if row_bytes == 0:  # an empty batch or width: nothing to split
        return h
    rows = max(multiple, strip_bytes // row_bytes // multiple * multiple)
    return min(rows, h)


def by_row_strips(fn: Callable[[slice], Tensor], like: Tensor, *, rows: int) -> Tensor:
    """``fn(rows)`` for consecutive row slices of ``like`` [B, C, H, W], written into one output
    ([B, C', H, W], the dtype ``fn`` returns, ``like``'s memory layout). ``fn`` must compute
    its rows from those rows only (plus any halo it reads itself)."""
    h = like.shape[-2]
    if rows >= h:
        return fn(slice(0, h))
    out = None
    for r0 in range(0, h, rows):
        rs = slice(r0, min(h, r0 + rows))
        part = fn(rs)
        if out is None:
            out = torch.empty((like.shape[0], part.shape[1], *like.shape[2:]), dtype=part.dtype,
                              device=like.device, memory_format=memory_format_of(like))
        out[:, :, rs] = part
    return out


def memory_format_of(x: Tensor) -> torch.memory_format:
    """``torch.channels_last`` if ``x`` is laid out so (and not also plainly contiguous)."""
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


def zero_init(layer: nn.Module) -> None:
    """Zero a layer's weight and bias: an output layer so, the untrained model returns its input
    (``identity_init`` of RAT, RED-CNN and DnCNN)."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
