"""Restoring images: tiled inference for large images (and, later, whole files)."""

from .tiling import restore_image, tile_starts, tile_weight

__all__ = ["restore_image", "tile_starts", "tile_weight"]
