"""The input check every region backend shares: an image already mapped to [0, 1].

Its own module so that :mod:`ratmir.regions.backends` (which builds the backends) and the backends
in :mod:`ratmir.regions.sam` and :mod:`ratmir.regions.medsam` all import it from here, one way.
"""

from __future__ import annotations

import numpy as np


def check_unit_image(image01: object) -> np.ndarray:
    """Check a backend input: a numpy [H, W] or [H, W, 3] array with values in [0, 1]."""
    if not isinstance(image01, np.ndarray):
        raise TypeError(f"image must be a numpy array [H, W] or [H, W, 3], got {type(image01).__name__}")
    if not (image01.ndim == 2 or (image01.ndim == 3 and image01.shape[-1] == 3)):
        raise ValueError(f"image must be [H, W] or [H, W, 3], got shape {image01.shape}")
    if min(image01.shape[:2]) < 1:
        raise ValueError(f"image has an empty spatial size: shape {image01.shape}")
    x = image01.astype(np.float32, copy=False)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"image values must be finite and in [0, 1] (apply an intensity window first), got "
            f"range [{np.nanmin(x):g}, {np.nanmax(x):g}]"
        )
    return x
