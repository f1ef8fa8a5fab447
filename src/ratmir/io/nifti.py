"""NIfTI (nibabel) with the geometry kept.

Arrays are in SimpleITK's order — [H, W] for 2-D, [D, H, W] for volumes — the transpose of
nibabel's [x, y(, z)]; the affine is nibabel's (voxel index (x, y, z) -> RAS+ millimetres).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import atomic_path, writer_suffix


@dataclass(frozen=True)
class NiftiImage:
    pixels: np.ndarray  # float32, [H, W] or [D, H, W]
    affine: np.ndarray  # 4x4
    header: object  # nibabel header (units, intent, ...)


def read_nifti(path: str | os.PathLike) -> NiftiImage:
    """Read a 2-D image or 3-D volume (singleton trailing axes dropped), scaling applied."""
    import nibabel

    path = Path(path)
    try:
        image = nibabel.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable NIfTI file: {type(err).__name__}: {err}") from err
    while data.ndim > 2 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise ValueError(f"{path}: expected a 2-D image or 3-D volume, got NIfTI shape {image.shape}")
    return NiftiImage(pixels=np.ascontiguousarray(data.T), affine=np.asarray(image.affine), header=image.header)


def write_nifti(path: str | os.PathLike, pixels: np.ndarray, *, affine: np.ndarray | None = None,
                header: object | None = None) -> Path:
    """Write [H, W] or [D, H, W] (SimpleITK order) with ``affine`` (identity if None).

    Written through a temporary file beside ``path`` that keeps its ending (nibabel chooses
    gzip from ``.nii.gz``) and is renamed when complete, so an interrupted write leaves no
    partial file under ``path``.
    """
    import nibabel

    pixels = np.asarray(pixels)
    if pixels.ndim not in (2, 3):
        raise ValueError(f"pixels must be [H, W] or [D, H, W], got shape {pixels.shape}")
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
    image = nibabel.Nifti1Image(np.ascontiguousarray(pixels.T), affine, header=header)
    path = Path(path)
    with atomic_path(path, suffix=writer_suffix(path)) as tmp:
        nibabel.save(image, str(tmp))
    return path
