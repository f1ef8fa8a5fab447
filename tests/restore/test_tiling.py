from __future__ import annotations

import pytest
import torch

from ratmir.models import DnCNN, RAT
from ratmir.restore import restore_image, tile_starts, tile_weight


def test_tile_starts_cover_everything() -> None:
    for size, tile, overlap in [(100, 32, 8), (64, 64, 8), (65, 64, 8), (10, 32, 4), (1000, 256, 32)]:
        starts = tile_starts(size, tile, overlap)
        covered = torch.zeros(size, dtype=torch.bool)
        for s in starts:
            covered[s:s + tile] = True
        assert covered.all() and starts[-1] + min(tile, size) == size
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_weights_positive_and_flat_inside() -> None:
    w = tile_weight(16, 16, 4, top=True, bottom=False, left=False, right=True)
    assert w[8:, :8].eq(1).all() and w[0].eq(0).all() and 0 < w[1, 0] < w[2, 0] < 1 and w[:, 0].eq(1).sum() == 13
    assert w[5, 12] == 1 and w[5, 15] == 0  # right side ramps down too


def test_cnn_tiled_equals_untiled() -> None:
    """DnCNN depth 4 sees 4 pixels around: with an overlap of 16 the tiles are exact."""
    model = DnCNN(features=8, depth=4).eval()
    x = torch.rand(1, 1, 90, 70)
    full = model(x)
    tiled = restore_image(model, x, tile=40, overlap=16, batch_size=3)
    torch.testing.assert_close(tiled, full, atol=1e-5, rtol=1e-5)


def test_rat_tiled_close_to_untiled() -> None:
    """RAT: region attention inside a tile sees part of each region; the difference is small."""
    torch.manual_seed(0)
    model = RAT(width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), middle_layers=2, layers_per_group=1, num_heads=2).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    x = torch.rand(1, 1, 96, 96)
    regions = (torch.arange(96)[:, None] // 24 * 4 + torch.arange(96)[None, :] // 24).expand(1, 96, 96)
    with torch.no_grad():
        full = model(x, regions)
        tiled = restore_image(model, x, regions, tile=64, overlap=16)
    assert tiled.shape == full.shape
    assert (tiled - full).abs().max() < 0.05 * full.abs().max()


def test_small_images_are_not_tiled_and_bad_tiles_rejected() -> None:
    model = DnCNN(features=4, depth=3).eval()
    x = torch.rand(1, 1, 20, 20)
    assert torch.equal(restore_image(model, x, tile=32), model(x))
    with pytest.raises(ValueError, match="tile must be >= 65"):
        restore_image(model, torch.rand(1, 1, 100, 100), tile=64, overlap=32)


def test_stored_dtype_with_a_per_tile_transform_equals_the_float_path() -> None:
    """A uint8 image with ``transform`` (normalise each tile) gives what the float image gives:
    the large image never needs a float copy."""
    torch.manual_seed(0)
    model = DnCNN(features=4, depth=3).eval()
    raw = torch.randint(0, 256, (1, 1, 70, 90), dtype=torch.uint8)
    regions = torch.randint(0, 4, (1, 70, 90), dtype=torch.int32)
    expected = restore_image(model, raw.float() / 255, regions, tile=32, overlap=8)
    got = restore_image(model, raw, regions, tile=32, overlap=8, transform=lambda t: t.float() / 255)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match=r"regions must have shape \[B, H, W\] = \[1, 70, 90\]"):
        restore_image(model, raw, regions[:, :60], tile=32, overlap=8, transform=lambda t: t.float() / 255)
