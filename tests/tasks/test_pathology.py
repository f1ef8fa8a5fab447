from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ratmir.tasks import PATHOLOGY_NORMALISATION, PathologyDegradation, bicubic_downscale, simulate_low_resolution


def _tile(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_shapes_with_crop_to_multiple_of_four() -> None:
    pair = simulate_low_resolution(_tile(37, 42), config=PathologyDegradation())
    assert pair.hq.shape == pair.lq.shape == (36, 40, 3)
    assert pair.hq.dtype == pair.lq.dtype == np.float32
    np.testing.assert_array_equal(pair.hq, _tile(37, 42)[:36, :40])
    record = json.loads(json.dumps(pair.record))
    assert record["scale"] == 4 and record["input_shape"] == [37, 42, 3] and record["output_shape"] == [36, 40, 3]
    assert "pillow" in record["versions"]


def test_constant_image_stays_constant() -> None:
    image = np.full((24, 32, 3), (200, 90, 10), dtype=np.uint8)
    pair = simulate_low_resolution(image, config=PathologyDegradation())
    np.testing.assert_array_equal(pair.lq, image.astype(np.float32))


def test_low_resolution_matches_antialiased_bicubic_reference() -> None:
    image = _tile(64, 48)
    low = bicubic_downscale(image, config=PathologyDegradation(quantize=False))
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    reference = torch.nn.functional.interpolate(tensor, size=(16, 12), mode="bicubic", antialias=True)
    np.testing.assert_allclose(low, reference[0].permute(1, 2, 0).numpy(), atol=1e-3)
    quantized = bicubic_downscale(image, config=PathologyDegradation())
    assert np.array_equal(quantized, np.round(quantized)) and quantized.min() >= 0 and quantized.max() <= 255


def test_float_and_uint8_inputs_agree_and_degrade() -> None:
    image = _tile(32, 32)
    a = simulate_low_resolution(image, config=PathologyDegradation())
    b = simulate_low_resolution(image.astype(np.float32), config=PathologyDegradation())
    np.testing.assert_array_equal(a.lq, b.lq)
    assert not np.array_equal(a.lq, a.hq)


def test_normalisation_round_trip() -> None:
    x = np.arange(256, dtype=np.float32)
    y = PATHOLOGY_NORMALISATION.normalise(x)
    assert y.min() == 0.0 and y.max() == 1.0
    np.testing.assert_allclose(PATHOLOGY_NORMALISATION.denormalise(y), x, atol=1e-4)


def test_bad_input() -> None:
    config = PathologyDegradation()
    with pytest.raises(ValueError, match=r"must have 3 channels \(last axis\), got shape \(8, 8, 4\)"):
        simulate_low_resolution(np.zeros((8, 8, 4), np.uint8), config=config)
    with pytest.raises(ValueError, match=r"3 dimensions \[H, W, C\], got shape \(8, 8\)"):
        simulate_low_resolution(np.zeros((8, 8), np.uint8), config=config)
    with pytest.raises(TypeError, match="uint8 or floating dtype, got int32"):
        simulate_low_resolution(np.zeros((8, 8, 3), np.int32), config=config)
    with pytest.raises(ValueError, match="at least 4x4 pixels, got shape"):
        simulate_low_resolution(np.zeros((3, 8, 3), np.uint8), config=config)
    with pytest.raises(ValueError, match=r"in \[0, 255\], got range"):
        simulate_low_resolution(np.full((8, 8, 3), 300.0, np.float32), config=config)
    bad = np.zeros((8, 8, 3), np.float32)
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN/Inf"):
        simulate_low_resolution(bad, config=config)
    with pytest.raises(ValueError, match="scale must be >= 2, got 1"):
        PathologyDegradation(scale=1)
