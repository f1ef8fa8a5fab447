from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio

from ratmir.conventions import CONVENTIONS, TASK_CONVENTIONS, luma, score
from ratmir.tasks import get_task


def test_ct_window_in_hounsfield_units() -> None:
    norm = get_task("ct").normalisation
    hu_t = torch.full((1, 1, 16, 16), 40.0)
    hu_p = hu_t + 10.0  # 10 HU error everywhere, inside the window
    res = score(norm.normalise(hu_p), norm.normalise(hu_t), convention="ct_window", normalisation=norm)
    assert float(res["rmse"]) == pytest.approx(10.0, rel=1e-4)
    assert float(res["psnr"]) == pytest.approx(20 * np.log10(400 / 10), rel=1e-4)
    full = score(norm.normalise(hu_p), norm.normalise(hu_t), convention="ct_full", normalisation=norm)
    assert float(full["psnr"]) == pytest.approx(20 * np.log10(4096 / 10), rel=1e-4)
    # errors outside the window vanish in ct_window
    bone = norm.normalise(torch.full((1, 1, 16, 16), 1000.0))
    res = score(bone, norm.normalise(torch.full((1, 1, 16, 16), 1500.0)), convention="ct_window", normalisation=norm)
    assert torch.isinf(res["psnr"]).all()


def test_luma_matches_scikit_image() -> None:
    rgb = np.random.default_rng(0).random((8, 9, 3))
    ours = luma(torch.from_numpy(rgb * 255).permute(2, 0, 1)[None])[0, 0].numpy()
    np.testing.assert_allclose(ours, rgb2ycbcr(rgb)[..., 0], atol=1e-6)


def test_reference_convention_is_8bit_luma() -> None:
    norm = get_task("ct").normalisation
    g = torch.Generator().manual_seed(0)
    t, p = torch.rand(1, 1, 20, 20, generator=g), torch.rand(1, 1, 20, 20, generator=g)
    res = score(p, t, convention="reference", normalisation=norm)
    p8, t8 = (np.round(x[0, 0].numpy().astype(np.float64) * 255) for x in (p, t))
    y = lambda v: 16 + v * 219 / 255  # noqa: E731
    assert float(res["psnr"]) == pytest.approx(peak_signal_noise_ratio(y(t8), y(p8), data_range=255), rel=1e-9)


def test_border_crop_and_registry() -> None:
    norm = get_task("pathology").normalisation
    t = torch.zeros(1, 3, 24, 24)
    p = t.clone()
    p[..., :4, :] = 1.0  # errors only in the cropped border
    assert torch.isinf(score(p, t, convention="rgb", normalisation=norm)["psnr"]).all()
    assert all(c in CONVENTIONS for names in TASK_CONVENTIONS.values() for c in names)
    with pytest.raises(ValueError, match="convention must be one of"):
        score(p, t, convention="hdr", normalisation=norm)
