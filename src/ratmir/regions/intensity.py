"""An explicit intensity window: medical image values -> [0, 1] for the region backends.

Medical images are 16-bit, HU, SUV or float; SAM wants 8-bit RGB and the scikit-image
backends work best on a known [0, 1] range. The window is given as a short spec string, and
both the spec and the values it resolved to (in image units) are recorded beside each label
map. Only the segmenter sees the windowed image; restoration keeps the original values.

Specs:
    ``auto``                     8-bit images as they are ([0, 255]); others ``percentile:0.5,99.5``
    ``percentile:P_LOW,P_HIGH``  clip to the image's own percentiles
    ``ct:CENTER,WIDTH``          a CT window in HU, e.g. ``ct:40,400`` (soft tissue), ``ct:-600,1500`` (lung)
    ``range:LOW,HIGH``           fixed values in image units
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW_MODES = ("auto", "percentile", "ct", "range")
_AUTO_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class WindowSpec:
    """A parsed window spec; ``a, b`` are percentiles, (center, width) or (low, high) by mode."""

    mode: str
    a: float = 0.0
    b: float = 0.0

    def __str__(self) -> str:
        return self.mode if self.mode == "auto" else f"{self.mode}:{self.a:g},{self.b:g}"


def parse_window(spec: str) -> WindowSpec:
    """Parse ``auto``, ``percentile:LO,HI``, ``ct:CENTER,WIDTH`` or ``range:LOW,HIGH``."""
    if not isinstance(spec, str):
        raise TypeError(f"window must be a string such as 'ct:40,400', got {type(spec).__name__}")
    mode, _, args = spec.strip().partition(":")
    if mode not in WINDOW_MODES:
        raise ValueError(f"window mode must be one of {WINDOW_MODES}, got {mode!r} (in window {spec!r})")
    if mode == "auto":
        if args:
            raise ValueError(f"window 'auto' takes no values, got {spec!r}")
        return WindowSpec("auto")
    parts = args.split(",")
    try:
        a, b = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        a = b = None
    if a is None or not (np.isfinite(a) and np.isfinite(b)):
        raise ValueError(f"window {spec!r} must be '{mode}:A,B' with two finite numbers, got {args!r}")
    if mode == "percentile" and not 0 <= a < b <= 100:
        raise ValueError(f"percentile window needs 0 <= LOW < HIGH <= 100, got {a:g}, {b:g}")
    if mode == "ct" and b <= 0:
        raise ValueError(f"ct window width must be > 0, got {b:g} (spec 'ct:CENTER,WIDTH')")
    if mode == "range" and not a < b:
        raise ValueError(f"range window needs LOW < HIGH, got {a:g}, {b:g}")
    return WindowSpec(mode, a, b)


def resolve_window(image: np.ndarray, *, spec: WindowSpec) -> tuple[float, float]:
    """The (low, high) values in image units that ``spec`` selects for ``image``."""
    if spec.mode == "auto":
        if image.dtype == np.uint8:
            return 0.0, 255.0
        spec = WindowSpec("percentile", *_AUTO_PERCENTILES)
    if spec.mode == "percentile":
        finite = image[np.isfinite(image)]
        if finite.size == 0:
            return 0.0, 1.0
        low, high = np.percentile(finite, (spec.a, spec.b))
        return float(low), float(high)
    if spec.mode == "ct":
        return spec.a - spec.b / 2, spec.a + spec.b / 2
    return spec.a, spec.b


def apply_window(image: np.ndarray, *, low: float, high: float) -> np.ndarray:
    """Map ``image`` linearly so ``low -> 0`` and ``high -> 1``, clipped; float32, NaN -> 0."""
    x = np.asarray(image, dtype=np.float32)
    if high <= low:  # a constant image: one flat level
        return np.zeros_like(x)
    out = (x - np.float32(low)) / np.float32(high - low)
    return np.nan_to_num(np.clip(out, 0.0, 1.0), nan=0.0)


def to_uint8_rgb(image01: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, 3] values in [0, 1] -> [H, W, 3] uint8 (SAM's input format)."""
    x = np.clip(np.asarray(image01, dtype=np.float32), 0.0, 1.0)
    u8 = np.round(x * 255.0).astype(np.uint8)
    if u8.ndim == 2:
        u8 = np.repeat(u8[..., None], 3, axis=-1)
    if u8.ndim != 3 or u8.shape[-1] != 3:
        raise ValueError(f"image must be [H, W] or [H, W, 3], got shape {image01.shape}")
    return np.ascontiguousarray(u8)
