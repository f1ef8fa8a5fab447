"""Image quality metrics: pure functions on [B, C, H, W] tensors, one value per image.

SSIM is Wang et al.'s (2004): Gaussian window of 11 taps, sigma 1.5, K1 = 0.01, K2 = 0.03,
population (not sample) covariances, averaged over the "valid" positions where the window lies
inside the image and then over channels. This is what
``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=R, channel_axis=...)`` computes (scikit-image crops
the 5-pixel border whose values depend on its padding), so the two agree to float precision.

>>> import torch
>>> x = torch.zeros(1, 1, 16, 16)
>>> round(float(psnr(x + 0.1, x, data_range=1.0)), 4)
20.0
>>> float(ssim(x + 0.5, x + 0.5, data_range=1.0))
1.0
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_image, check_label_map


def _pair(pred: Tensor, target: Tensor) -> None:
    check_image(pred, name="pred")
    check_image(target, name="target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {list(pred.shape)} and {list(target.shape)}")


def _check_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range must be a positive number (max - min of the valid values), got {data_range!r}")
    return float(data_range)


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per image: [B, C, H, W] x 2 -> [B]."""
    _pair(pred, target)
    return (pred.double() - target.double()).square().flatten(1).mean(1)


def rmse(pred: Tensor, target: Tensor) -> Tensor:
    """Root mean squared error per image: [B, C, H, W] x 2 -> [B] (in the inputs' units)."""
    return mse(pred, target).sqrt()


def psnr(pred: Tensor, target: Tensor, *, data_range: float) -> Tensor:
    """Peak signal-to-noise ratio in dB per image: ``10 log10(data_range^2 / MSE)`` -> [B].

    Identical images give ``inf``.
    """
    r = _check_range(data_range)
    return 10 * torch.log10(r**2 / mse(pred, target))


def gaussian_window(size: int = 11, sigma: float = 1.5, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Normalised 1-D Gaussian of ``size`` taps."""
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: Tensor, target: Tensor, *, data_range: float, win_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> Tensor:
    """Structural similarity per image (mean over valid positions and channels) -> [B]."""
    _pair(pred, target)
    r = _check_range(data_range)
    if min(pred.shape[-2:]) < win_size:
        raise ValueError(f"images must be at least {win_size}x{win_size} for SSIM, got {list(pred.shape[-2:])}")
    b, c, h, w = pred.shape
    x = pred.double().reshape(b * c, 1, h, w)
    y = target.double().reshape(b * c, 1, h, w)
    g = gaussian_window(win_size, sigma).to(x.device)

    def blur(t: Tensor) -> Tensor:  # separable, "valid" positions only
        return F.conv2d(F.conv2d(t, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    c1, c2 = (k1 * r) ** 2, (k2 * r) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.reshape(b, c, -1).mean(-1).mean(-1)


def region_psnr(pred: Tensor, target: Tensor, regions: Tensor, *, data_range: float) -> list[dict[int, float]]:
    """PSNR inside each region of each image: one ``{label: psnr_dB}`` per image.

    ``regions`` [B, H, W] integer labels at the images' resolution; the MSE of a region is over
    its pixels and all channels. Shows which regions a model restores worst.
    """
    _pair(pred, target)
    r = _check_range(data_range)
    regions = check_label_map(regions, like=pred)
    from .losses import region_mean

    err = (pred.double() - target.double()).square().mean(1)
    means, index = region_mean(err, regions)
    labels, _ = torch.unique(regions, return_inverse=True)
    out: list[dict[int, float]] = []
    for i in range(pred.shape[0]):
        present = torch.unique(index[i]).tolist()
        out.append({
            int(labels[j]): (math.inf if means[i, j] == 0 else 10 * math.log10(r**2 / float(means[i, j])))
            for j in present
        })
    return out
