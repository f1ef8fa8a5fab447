"""Region partitioning: the label maps that RAT's region attention works inside.

- :func:`masks_to_label_map`: SAM masks -> label map by the reference rule.
- :func:`build_backend`: ``medsam``, ``sam``, ``felzenszwalb``, ``slic``, ``grid`` or ``none`` by name.
- :func:`parse_window` / :func:`resolve_window` / :func:`apply_window`: the recorded intensity
  window that maps medical values to the segmenter's [0, 1] (8-bit RGB for SAM).
- :func:`save_label_map` / :func:`load_label_map`: NIfTI label maps in the reference's
  (SimpleITK) array convention.
- :func:`run_regions` with a :class:`RegionsConfig`: the ``ratmir regions`` batch runner.
"""

from .backends import BACKEND_NAMES, RegionBackend, backend_option_names, build_backend
from .batch import RegionsConfig, RegionsReport, run_regions
from .intensity import apply_window, parse_window, resolve_window, to_uint8_rgb
from .labelmap_io import load_label_map, save_label_map
from .overlay import boundary_overlay
from .postprocess import masks_to_label_map
from ..io.formats import read_image

__all__ = [
    "BACKEND_NAMES",
    "RegionBackend",
    "RegionsConfig",
    "RegionsReport",
    "apply_window",
    "backend_option_names",
    "boundary_overlay",
    "build_backend",
    "load_label_map",
    "masks_to_label_map",
    "parse_window",
    "read_image",
    "resolve_window",
    "run_regions",
    "save_label_map",
    "to_uint8_rgb",
]
