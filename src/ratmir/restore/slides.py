"""Whole-slide restoration, region by region: memory bounded by the tile size.

The region label map is computed once for the whole slide, at the finest pyramid level whose
longer side is at most ``label_max_side`` pixels, and every tile cuts its labels from it by
nearest sampling — so tiles agree on regions. Each output tile is restored from an input window
with a ``margin`` on every side (clamped at the slide's edges) and cropped, then streamed into a
tiled BigTIFF (level 0, RGB, readable by OpenSlide and tifffile) in raster order, under a
temporary name that becomes the output's name only once the slide is complete
(:func:`ratmir.restore.output.output_file`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..io.wsi import SlideReader
from ..regions.backends import RegionBackend
from ..regions.batch import segment_pixels
from ..regions.intensity import WindowSpec
from ..tasks.base import Normalisation
from .output import output_file

SLIDE_TILE = 512


def slide_label_map(slide: SlideReader, *, backend: RegionBackend, window: WindowSpec,
                    max_side: int) -> np.ndarray:
    """Labels [h, w] of the whole slide at a coarse level (longer side <= ``max_side``)."""
    level = slide.level_for_size(max_side)
    labels, _, _ = segment_pixels(slide.read_level(level).astype(np.float32), is_volume=False, backend=backend,
                                  window=window)
    return labels


def restore_slide(path: Path, out: Path, *, model: torch.nn.Module, normalisation: Normalisation,
                  backend: RegionBackend, window: WindowSpec, device: str = "cpu", tile: int = SLIDE_TILE,
                  margin: int = 32, label_max_side: int = 4096,
                  on_written: Callable[[Path], None] | None = None) -> Path:
    """Restore the slide at ``path`` into the tiled BigTIFF ``out``; returns ``out``.

    ``on_written`` runs on the finished temporary file just before it is renamed to ``out``.
    """
    import tifffile

    if model.in_channels != 3:
        raise ValueError(f"{path}: slides are RGB; the model expects {model.in_channels} channel(s)")
    with SlideReader(path) as slide:
        width, height = slide.dimensions
        labels_low = slide_label_map(slide, backend=backend, window=window, max_side=label_max_side)
        sy, sx = labels_low.shape[0] / height, labels_low.shape[1] / width

        def tiles():
            for y0 in range(0, height, tile):
                for x0 in range(0, width, tile):
                    ya, xa = max(y0 - margin, 0), max(x0 - margin, 0)
                    yb, xb = min(y0 + tile + margin, height), min(x0 + tile + margin, width)
                    rgb = slide.read(x=xa, y=ya, width=xb - xa, height=yb - ya).astype(np.float32)
                    rows = np.minimum((np.arange(ya, yb) * sy).astype(int), labels_low.shape[0] - 1)
                    cols = np.minimum((np.arange(xa, xb) * sx).astype(int), labels_low.shape[1] - 1)
                    regions = torch.from_numpy(labels_low[rows][:, cols].astype(np.int64))[None].to(device)
                    x = normalisation.normalise(torch.from_numpy(rgb).permute(2, 0, 1)[None]).to(device)
                    with torch.no_grad():
                        y = model(x, regions).float().clamp(0, 1).cpu()
                    y = normalisation.denormalise(y)[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
                    crop = y[y0 - ya:y0 - ya + tile, x0 - xa:x0 - xa + tile]
                    out_tile = np.full((tile, tile, 3), 255, np.uint8)  # edge tiles are padded
                    out_tile[:crop.shape[0], :crop.shape[1]] = crop
                    yield out_tile

        with output_file(out, on_written=on_written) as tmp:
            tifffile.imwrite(tmp, tiles(), shape=(height, width, 3), dtype=np.uint8, tile=(tile, tile),
                             photometric="rgb", bigtiff=True, compression="zlib")
    return out
