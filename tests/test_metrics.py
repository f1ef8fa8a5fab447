from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ratmir import metrics
from ratmir.metrics import psnr, region_psnr, rmse, ssim


def test_doctests() -> None:
    assert doctest.testmod(metrics).failed == 0


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("data_range", [1.0, 400.0])
def test_ssim_and_psnr_match_scikit_image(channels: int, data_range: float) -> None:
    g = torch.Generator().manual_seed(3)
    target = torch.rand(2, channels, 40, 33, generator=g) * data_range
    pred = target + torch.randn(2, channels, 40, 33, generator=g) * 0.1 * data_range
    ours_ssim = ssim(pred, target, data_range=data_range)
    ours_psnr = psnr(pred, target, data_range=data_range)
    for i in range(2):
        p = pred[i].permute(1, 2, 0).numpy().astype(np.float64)
        t = target[i].permute(1, 2, 0).numpy().astype(np.float64)
        ref = structural_similarity(p, t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=data_range, channel_axis=2)
        assert abs(float(ours_ssim[i]) - ref) < 1e-8  # both compute in float64 (measured ~2e-16)
        assert abs(float(ours_psnr[i]) - peak_signal_noise_ratio(t, p, data_range=data_range)) < 1e-6


def test_known_values() -> None:
    x = torch.zeros(1, 1, 16, 16)
    assert float(rmse(x + 2, x)) == 2.0
    assert math.isinf(float(psnr(x, x, data_range=1.0)))
    assert float(ssim(x, x + 1, data_range=1.0)) < 0.1


def test_region_psnr() -> None:
    target = torch.zeros(1, 1, 4, 4)
    pred = target.clone()
    pred[..., :2] = 0.1  # error only in region 7 (left half)
    regions = torch.full((1, 4, 4), 9)
    regions[..., :2] = 7
    (res,) = region_psnr(pred, target, regions, data_range=1.0)
    assert res[7] == pytest.approx(20.0) and math.isinf(res[9])


def test_bad_inputs() -> None:
    x = torch.zeros(1, 1, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, torch.zeros(1, 1, 16, 15), data_range=1.0)
    with pytest.raises(ValueError, match="data_range must be a positive number"):
        ssim(x, x, data_range=0)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), data_range=1.0)
    with pytest.raises(ValueError, match="NaN"):
        rmse(x * float("nan"), x)
