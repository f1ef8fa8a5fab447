"""Restoring images: whole files and folders (``ratmir restore``) and tiled inference."""

from .files import RestoreConfig, RestoreReport, restore_files
from .tiling import restore_image, tile_starts, tile_weight

__all__ = ["RestoreConfig", "RestoreReport", "restore_files", "restore_image", "tile_starts", "tile_weight"]
