"""Region boundaries drawn on the (windowed) image, for a visual check of a label map."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .intensity import to_uint8_rgb

BOUNDARY_COLOR = (255, 48, 48)


def boundary_overlay(image01: np.ndarray, labels: np.ndarray, *,
                     color: tuple[int, int, int] = BOUNDARY_COLOR) -> np.ndarray:
    """[H, W, 3] uint8: ``image01`` (grey or RGB in [0, 1]) with the region boundaries in ``color``."""
    from skimage.segmentation import find_boundaries

    labels = np.asarray(labels)
    if labels.shape != image01.shape[:2]:
        raise ValueError(f"labels have shape {labels.shape} but the image is {image01.shape[:2]}")
    rgb = to_uint8_rgb(image01)
    rgb[find_boundaries(labels, mode="inner")] = np.asarray(color, dtype=np.uint8)
    return rgb


def save_overlay(path: str | os.PathLike, image01: np.ndarray, labels: np.ndarray) -> Path:
    """Write :func:`boundary_overlay` as a PNG (creating the folder)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(boundary_overlay(image01, labels)).save(path)
    return path
