"""Tiled inference with overlap and blending, for images too large to restore at once.

Every tile's region labels are cut from the one global label map, so neighbouring tiles agree
on what a region is; outputs are blended with weights that ramp linearly across the overlap,
so seams do not show. Memory is bounded by the tile size (plus the full-size output and its
weight accumulator).

Tiled and untiled outputs agree exactly for a model whose receptive-field radius is at most a
quarter of the overlap (a CNN); for RAT the region attention of a tile sees only the part of each region inside the
tile, so they differ by a small, measured amount (tests/restore/test_tiling.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_image, check_label_map, check_positive_int


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, size) with tiles of ``tile`` overlapping by >= ``overlap``."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def tile_weight(height: int, width: int, overlap: int, *, top: bool, bottom: bool, left: bool, right: bool,
                device: torch.device | None = None) -> Tensor:
    """[height, width] blending weights: 1 inside; on the sides that touch another tile (flags)
    0 over the outer quarter of the overlap, then a linear ramp up to 1 at the overlap's end.

    The zero margin drops the pixels that a tile's own border (zero padding, cut regions)
    affects most; the neighbouring tile covers them with positive weight, because tiles
    overlap by at least ``overlap``.
    """
    def ramp(n: int, start: bool, end: bool) -> Tensor:
        w = torch.ones(n, device=device)
        k = min(overlap, n // 2)
        if k > 0:
            m = k // 4
            j = torch.arange(k, device=device, dtype=torch.float32)
            up = ((j - m + 1) / (k - 2 * m + 1)).clamp(0, 1)
            if start:
                w[:k] = up
            if end:
                w[n - k:] = up.flip(0)
        return w

    return ramp(height, top, bottom)[:, None] * ramp(width, left, right)[None, :]


@torch.no_grad()
def restore_image(model: torch.nn.Module, x: Tensor, regions: Tensor | None = None, *, tile: int | None = 512,
                  overlap: int = 32, batch_size: int = 1) -> Tensor:
    """Restore x [B, C, H, W] with ``model(x, regions)``, tiled when H or W exceeds ``tile``.

    ``tile=None`` restores in one pass. ``batch_size`` tiles go through the model together.
    """
    check_image(x)
    if regions is not None:
        regions = check_label_map(regions, like=x)
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return model(x, regions)
    check_positive_int("tile", tile, minimum=2 * overlap + 1)
    check_positive_int("overlap", overlap, minimum=0)
    out = torch.zeros_like(x)
    norm = torch.zeros(1, 1, h, w, dtype=x.dtype, device=x.device)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    boxes = [(y, xx) for y in ys for xx in xs]
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i:i + batch_size]
        th, tw = min(tile, h), min(tile, w)
        xt = torch.cat([x[..., y:y + th, xx:xx + tw] for y, xx in chunk])
        rt = None if regions is None else torch.cat([regions[:, y:y + th, xx:xx + tw] for y, xx in chunk])
        yt = model(xt, rt).split(x.shape[0])
        for (y, xx), piece in zip(chunk, yt):
            wgt = tile_weight(th, tw, overlap, top=y > 0, bottom=y + th < h, left=xx > 0, right=xx + tw < w,
                              device=x.device).to(x.dtype)
            out[..., y:y + th, xx:xx + tw] += piece * wgt
            norm[..., y:y + th, xx:xx + tw] += wgt
    return out.div_(norm)
