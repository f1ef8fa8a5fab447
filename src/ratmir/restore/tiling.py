"""Tiled inference with overlap and blending, for images too large to restore at once.

Every tile's region labels are cut from the one global label map, so neighbouring tiles agree
on what a region is; outputs are blended with weights that ramp linearly across the overlap,
so seams do not show. Memory is bounded by the tile size plus the full-size output (the weights
are separable, so there is no full-size weight map).

Tiled and untiled outputs agree exactly for a model whose receptive-field radius is at most a
quarter of the overlap (a CNN); for RAT the region attention of a tile sees only the part of each region inside the
tile, so they differ by a small, measured amount (tests/restore/test_tiling.py).
"""

from __future__ import annotations

from collections.abc import Callable

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


def _ramp(n: int, overlap: int, *, start: bool, end: bool, device: torch.device | None = None) -> Tensor:
    """[n] blending weights along one axis (see :func:`tile_weight`)."""
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


def tile_weight(height: int, width: int, overlap: int, *, top: bool, bottom: bool, left: bool, right: bool,
                device: torch.device | None = None) -> Tensor:
    """[height, width] blending weights: 1 inside; on the sides that touch another tile (flags)
    0 over the outer quarter of the overlap, then a linear ramp up to 1 at the overlap's end.

    The zero margin drops the pixels that a tile's own border (zero padding, cut regions)
    affects most; the neighbouring tile covers them with positive weight, because tiles
    overlap by at least ``overlap``.
    """
    return (_ramp(height, overlap, start=top, end=bottom, device=device)[:, None]
            * _ramp(width, overlap, start=left, end=right, device=device)[None, :])


def _axis_weights(size: int, tile: int, overlap: int, starts: list[int]) -> list[Tensor]:
    """Per start, the [tile] weights along one axis; the tile grid is the product of both axes'
    starts, so the total weight at (y, x) is the product of the two axes' summed weights."""
    return [_ramp(tile, overlap, start=s > 0, end=s + tile < size) for s in starts]


@torch.no_grad()
def restore_image(model: torch.nn.Module, x: Tensor, regions: Tensor | None = None, *, tile: int | None = 512,
                  overlap: int = 32, batch_size: int = 1,
                  transform: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Restore x [B, C, H, W] with ``model(x, regions)``, tiled when H or W exceeds ``tile``.

    ``tile=None`` restores in one pass. ``batch_size`` tiles go through the model together.
    ``transform`` maps each input tile to what the model takes (e.g. dtype, device and
    normalisation), so a large ``x`` can stay in its stored dtype and on the CPU. A tiled result
    is float32 (or x's float dtype) on x's device; an untiled one is the model's output as it is.
    Memory beyond x: the output, one tile's forward pass, and no full-size weight map (the tile
    grid's weights are separable).
    """
    if transform is None or x.is_floating_point():
        check_image(x)
    elif x.dim() != 4 or 0 in x.shape:
        raise ValueError(f"x must be a non-empty [B, C, H, W] tensor, got shape {tuple(x.shape)}")
    transform = transform or (lambda t: t)
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        xt = transform(x)
        rt = None if regions is None else regions.to(xt.device)
        return model(xt, rt)
    check_positive_int("tile", tile, minimum=2 * overlap + 1)
    check_positive_int("overlap", overlap, minimum=0)
    if regions is not None:  # shape and dtype here; values (integers, finite) per tile in the model
        check_label_map(regions[..., :1, :1], like=x[..., :1, :1].float())
        if regions.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"regions must have shape [B, H, W] = {[x.shape[0], h, w]} to match the image "
                             f"{list(x.shape)}, got {list(regions.shape)}")
    out = torch.zeros(x.shape, dtype=x.dtype if x.is_floating_point() else torch.float32, device=x.device)
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    wy, wx = _axis_weights(h, th, overlap, ys), _axis_weights(w, tw, overlap, xs)
    boxes = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    for n in range(0, len(boxes), batch_size):
        chunk = boxes[n:n + batch_size]
        xt = transform(torch.cat([x[..., ys[i]:ys[i] + th, xs[j]:xs[j] + tw] for i, j in chunk]))
        rt = None if regions is None else torch.cat(
            [regions[:, ys[i]:ys[i] + th, xs[j]:xs[j] + tw] for i, j in chunk]).to(xt.device)
        pieces = model(xt, rt).split(x.shape[0])
        for (i, j), piece in zip(chunk, pieces):
            wgt = (wy[i][:, None] * wx[j][None, :]).to(device=out.device, dtype=out.dtype)
            out[..., ys[i]:ys[i] + th, xs[j]:xs[j] + tw].addcmul_(piece.to(out.device, out.dtype), wgt)
    rows = torch.zeros(h)
    cols = torch.zeros(w)
    for i, start in enumerate(ys):
        rows[start:start + th] += wy[i]
    for j, start in enumerate(xs):
        cols[start:start + tw] += wx[j]
    return out.div_(rows.to(out)[:, None]).div_(cols.to(out)[None, :])
