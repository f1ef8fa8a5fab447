"""Pathology 4x super-resolution task: bicubic 4x down, then bicubic back up, RGB.

The bicubic is **Pillow's** ``Image.Resampling.BICUBIC`` (Keys cubic, a = -0.5, the kernel
MATLAB's ``imresize`` uses) which, when reducing, stretches the kernel support by the scale
factor: the antialiased, MATLAB/PIL-style bicubic of the SR literature. Pillow is already a
dependency, is maintained, and torch's ``interpolate(mode="bicubic", antialias=True)`` was built
to match it (the tests use that as an independent reference). At image borders Pillow
renormalises the truncated kernel where MATLAB pads symmetrically, so edge pixels can differ
from MATLAB by a few grey levels.

Each RGB channel is resized as a 32-bit float image (Pillow mode ``"F"``); with ``quantize``
(default) the low-resolution image and the output are rounded and clipped to integers in
[0, 255], as when the LR image is stored as an 8-bit PNG. Sizes that are not multiples of the
scale are first cropped to the largest multiple (bottom/right rows and columns dropped), so the
high-quality image is that crop and the output has exactly its shape.

Normalisation (:data:`PATHOLOGY_NORMALISATION`): RGB [0, 255] -> [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .base import DegradedPair, Normalisation, check_array, config_record, library_versions

PATHOLOGY_NORMALISATION = Normalisation(low=0.0, high=255.0, units="RGB 8-bit levels")


@dataclass(frozen=True)
class PathologyDegradation:
    """Parameters of the SR degradation; deterministic, so there is no seed."""

    scale: int = 4
    quantize: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, int):
            raise TypeError(f"scale must be an int, got {type(self.scale).__name__} ({self.scale!r})")
        if self.scale < 2:
            raise ValueError(f"scale must be >= 2, got {self.scale}")
        if not isinstance(self.quantize, bool):
            raise TypeError(f"quantize must be a bool, got {type(self.quantize).__name__}")

    def record(self) -> dict[str, object]:
        return {
            "task": "pathology",
            **config_record(self),
            "resampling": "Pillow Image.Resampling.BICUBIC (a=-0.5, antialiased when reducing)",
            "crop": "bottom/right to a multiple of scale",
        }


def crop_to_multiple(image: np.ndarray, *, multiple: int) -> np.ndarray:
    """The top-left crop of ``image`` [H, W, ...] whose height and width are multiples."""
    height, width = (image.shape[0] // multiple) * multiple, (image.shape[1] // multiple) * multiple
    return image[:height, :width]


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of [H, W, C] float32 to ``size`` = (height, width), channel by channel."""
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c])).resize((size[1], size[0]), Image.Resampling.BICUBIC))
        for c in range(image.shape[-1])
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def _quantize(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0.0, 255.0).astype(np.float32)


def bicubic_downscale(rgb: np.ndarray, *, config: PathologyDegradation) -> np.ndarray:
    """The low-resolution image: ``rgb`` [H, W, 3] (cropped to a multiple of the scale) / scale."""
    rgb = _check_rgb(rgb, config)
    rgb = crop_to_multiple(rgb, multiple=config.scale)
    low = _resize(rgb, (rgb.shape[0] // config.scale, rgb.shape[1] // config.scale))
    return _quantize(low) if config.quantize else low


def simulate_low_resolution(rgb: np.ndarray, *, config: PathologyDegradation) -> DegradedPair:
    """``DegradedPair(hq=cropped rgb, lq=bicubic down then up, record)``, float32 in [0, 255].

    ``rgb`` is [H, W, 3], uint8 or float in [0, 255], at least ``scale`` pixels on each side.
    """
    rgb = _check_rgb(rgb, config)
    hq = crop_to_multiple(rgb, multiple=config.scale)
    low = bicubic_downscale(hq, config=config)
    lq = _resize(low, hq.shape[:2])
    lq = _quantize(lq) if config.quantize else lq
    record = {
        **config.record(),
        "input_shape": list(rgb.shape),
        "output_shape": list(hq.shape),
        "versions": library_versions("pillow"),
    }
    return DegradedPair(hq=np.ascontiguousarray(hq), lq=lq, record=record)


def _check_rgb(rgb: object, config: PathologyDegradation) -> np.ndarray:
    if not isinstance(config, PathologyDegradation):
        raise TypeError(f"config must be a PathologyDegradation, got {type(config).__name__}")
    rgb = check_array(rgb, name="rgb", ndim=3, channels=3, min_size=config.scale, allow_uint8=True)
    rgb = rgb.astype(np.float32)
    if rgb.min() < 0 or rgb.max() > 255:
        raise ValueError(f"rgb values must be in [0, 255], got range [{rgb.min()}, {rgb.max()}]")
    return rgb
