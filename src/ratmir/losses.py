"""Losses: the focal region loss of RAT (and plain L1 as its gamma = 0 case)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_image, check_label_map

NORMALIZATIONS = ("batch", "image")


def region_mean(values: Tensor, regions: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` [B, H, W] over each (image, region) pair, without a loop over regions.

    Returns ``(means, index)``: ``means`` [B, R] (R = number of distinct labels in the batch,
    entries of labels absent from an image are 0) and ``index`` [B, H, W] into the last axis
    of ``means`` for every pixel.
    """
    b = values.shape[0]
    _, index = torch.unique(regions, return_inverse=True)
    num = int(index.max()) + 1
    flat = (index + torch.arange(b, device=index.device)[:, None, None] * num).reshape(-1)
    sums = torch.zeros(b * num, dtype=values.dtype, device=values.device).index_add_(0, flat, values.reshape(-1))
    counts = torch.zeros(b * num, dtype=values.dtype, device=values.device).index_add_(
        0, flat, torch.ones_like(values.reshape(-1))
    )
    return (sums / counts.clamp_min(1)).reshape(b, num), index


class FocalRegionLoss(nn.Module):
    """L1 weighted per region by ``1 + gamma * w``, with w the region's normalised error.

    For every image and region, ``w = (mean L1 over the region and channels) ** delta``,
    divided by the largest such weight over the whole batch (``normalize="batch"``, as the
    authors' code does) or within each image (``"image"``, as the paper's formula reads), and
    computed without gradient. Loss = mean over pixels and channels of ``L1 * (1 + gamma * w)``.
    ``gamma = 0`` is exactly the L1 loss.

    Call ``loss(pred, target, regions)`` with ``pred``/``target`` [B, C, H, W] and integer
    ``regions`` [B, H, W] at the same resolution.
    """

    def __init__(self, *, gamma: float = 1e-3, delta: float = 1.0, normalize: str = "batch") -> None:
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if not delta > 0:
            raise ValueError(f"delta must be > 0, got {delta}")
        self.gamma = float(gamma)
        self.delta = float(delta)
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, delta={self.delta}, normalize={self.normalize!r}"

    def forward(self, pred: Tensor, target: Tensor, regions: Tensor) -> Tensor:
        check_image(pred, name="pred")
        check_image(target, name="target", channels=pred.shape[1])
        if target.shape != pred.shape:
            raise ValueError(f"target must have the shape of pred {list(pred.shape)}, got {list(target.shape)}")
        regions = check_label_map(regions, like=pred)
        l1 = (pred - target).abs()
        if self.gamma == 0:
            return l1.mean()
        with torch.no_grad():
            means, index = region_mean(l1.mean(dim=1), regions)
            w = means.pow(self.delta)
            peak = w.amax() if self.normalize == "batch" else w.amax(dim=1, keepdim=True)
            w = torch.where(peak > 0, w / peak, torch.zeros_like(w)).clamp(0.0, 1.0)
            weight = torch.gather(w, 1, index.reshape(index.shape[0], -1)).reshape(index.shape)
        return (l1 * (1.0 + self.gamma * weight[:, None])).mean()
