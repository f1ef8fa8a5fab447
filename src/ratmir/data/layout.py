"""The on-disk layout of a prepared paired dataset, shared by ``ratmir prepare`` (writer) and
:class:`~ratmir.data.PairedDataset` (reader).

::

    DIR/dataset.json               task, sources, splits, units, normalisation, degradation, seed
    DIR/<split>/lq/<name>.tiff     low-quality image, float32, physical units, [H, W] or [H, W, 3]
    DIR/<split>/hq/<name>.tiff     high-quality image, same shape and units
    DIR/<split>/regions/<name>.nii.gz   region label map of the LQ image (``ratmir regions``)

Images stay in physical units (HU, activity, RGB 0-255); the normalisation recorded in
``dataset.json`` maps them to the network's range when they are loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.raster import read_tiff, write_tiff

DATASET_FILE = "dataset.json"
IMAGE_SUFFIX = ".tiff"
LABEL_SUFFIX = ".nii.gz"
REQUIRED_KEYS = ("task", "channels", "units", "normalisation", "splits")


@dataclass(frozen=True)
class PairPaths:
    lq: Path
    hq: Path
    regions: Path


def pair_paths(root: str | os.PathLike, split: str, name: str) -> PairPaths:
    base = Path(root) / split
    return PairPaths(
        lq=base / "lq" / f"{name}{IMAGE_SUFFIX}",
        hq=base / "hq" / f"{name}{IMAGE_SUFFIX}",
        regions=base / "regions" / f"{name}{LABEL_SUFFIX}",
    )


def read_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``DIR/dataset.json``."""
    path = Path(root) / DATASET_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no prepared dataset at {Path(root)}: {path} is missing (make one with `ratmir prepare`)"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{path} lacks the keys {missing} (expected {list(REQUIRED_KEYS)})")
    return manifest


def write_image(path: Path, image: np.ndarray) -> None:
    """Write a float32 image (uncompressed TIFF), creating the folder."""
    write_tiff(path, np.asarray(image, dtype=np.float32))


def read_image(path: Path) -> np.ndarray:
    """Read an image written by :func:`write_image` as float32 [H, W] or [H, W, C]."""
    if not path.is_file():
        raise FileNotFoundError(f"missing image {path}")
    return read_tiff(path).astype(np.float32, copy=False)


def image_shape(path: Path) -> tuple[int, ...]:
    """The shape of an image written by :func:`write_image`, from its header only."""
    import tifffile

    if not path.is_file():
        raise FileNotFoundError(f"missing image {path}")
    with tifffile.TiffFile(path) as tif:
        return tuple(tif.pages[0].shape)
