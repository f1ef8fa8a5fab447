"""Restoring images: whole files and folders (``ratmir restore``) and tiled inference."""

from .files import RestoreConfig, RestoreInterrupted, RestoreReport, restore_files
from .manifest import MANIFEST_NAME
from .tiling import restore_image, tile_starts, tile_weight

__all__ = ["MANIFEST_NAME", "RestoreConfig", "RestoreInterrupted", "RestoreReport", "restore_files", "restore_image",
           "tile_starts", "tile_weight"]
