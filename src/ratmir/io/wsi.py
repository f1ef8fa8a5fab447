"""Whole-slide images (OpenSlide): read a region at a pyramid level as RGB uint8."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class SlideReader:
    """Open a slide (SVS, NDPI, MRXS, TIFF pyramids, ...) and read regions of it.

    >>> with SlideReader(path) as slide:                         # doctest: +SKIP
    ...     tile = slide.read(x=0, y=0, width=512, height=512)   # [512, 512, 3] uint8
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import openslide

        self.path = Path(path)
        try:
            self._slide = openslide.OpenSlide(str(self.path))
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"{self.path}: not a slide OpenSlide can read: {type(err).__name__}: {err}") from err

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) at level 0."""
        return tuple(self._slide.dimensions)

    @property
    def level_count(self) -> int:
        return int(self._slide.level_count)

    def level_dimensions(self, level: int) -> tuple[int, int]:
        """(width, height) at ``level``."""
        return tuple(self._slide.level_dimensions[level])

    def level_for_size(self, max_side: int) -> int:
        """The finest level whose longer side is at most ``max_side`` (else the coarsest)."""
        for level in range(self.level_count):
            if max(self.level_dimensions(level)) <= max_side:
                return level
        return self.level_count - 1

    def read_level(self, level: int) -> np.ndarray:
        """A whole level as RGB uint8 [height, width, 3] (use a coarse level)."""
        w, h = self.level_dimensions(level)
        return self.read(x=0, y=0, width=w, height=h, level=level)

    @property
    def microns_per_pixel(self) -> float | None:
        value = self._slide.properties.get("openslide.mpp-x")
        return float(value) if value else None

    def read(self, *, x: int, y: int, width: int, height: int, level: int = 0) -> np.ndarray:
        """RGB uint8 [height, width, 3]; (x, y) in level-0 pixels; transparent areas white."""
        if not 0 <= level < self.level_count:
            raise ValueError(f"level must be in [0, {self.level_count}), got {level}")
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        rgba = self._slide.read_region((x, y), level, (width, height))
        white = np.full((height, width, 3), 255, np.uint8)
        arr = np.asarray(rgba)
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        return (arr[..., :3] * alpha + white * (1 - alpha)).round().astype(np.uint8)

    def close(self) -> None:
        self._slide.close()

    def __enter__(self) -> SlideReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
