"""Label-map files: integer NIfTI in the array convention of the reference's ``indexed_mask.nii``.

The authors wrote their label map with SimpleITK from an [H, W] array, so the file stores x
(columns, W) as its first axis; SimpleITK reads it back as [H, W] while nibabel's data array is
[W, H]. We write and read with nibabel (pure Python) in that same convention: the array in
the image's orientation is the file's voxel array with its axes reversed (SimpleITK's
``GetArrayFromImage``), [H, W] for an image and [D, H, W] for a volume. So SimpleITK, our
reader and the reference file all agree.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._files import atomic_path

# SimpleITK's default geometry (identity direction in LPS) as a NIfTI (RAS) affine.
SITK_DEFAULT_AFFINE = np.diag([-1.0, -1.0, 1.0, 1.0])
LABEL_MAP_SUFFIX = ".nii.gz"


def _nib():
    import nibabel

    return nibabel


def save_label_map(path: str | os.PathLike, labels: np.ndarray, *, affine: np.ndarray | None = None) -> Path:
    """Write an integer label map [H, W] (or a volume [D, H, W]) as NIfTI, atomically.

    ``affine`` is the NIfTI voxel-to-world matrix (4x4) of the image the labels belong to;
    default SimpleITK's identity geometry, as in the reference file.
    """
    nib = _nib()
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3) or min(labels.shape) < 1:
        raise ValueError(f"labels must be [H, W] or [D, H, W] and non-empty, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    if labels.min() < np.iinfo(np.int32).min or labels.max() > np.iinfo(np.int32).max:
        raise ValueError(f"labels must fit int32, got range [{labels.min()}, {labels.max()}]")
    affine = SITK_DEFAULT_AFFINE if affine is None else np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
    image = nib.Nifti1Image(np.ascontiguousarray(labels.astype(np.int32).T), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    with atomic_path(path, suffix=suffix) as tmp:  # nibabel picks gzip by the suffix
        nib.save(image, str(tmp))
    return path


def _image_shape(file_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(file_shape)
    while len(shape) > 2 and shape[-1] == 1:  # a 2-D map stored with a singleton z
        shape = shape[:-1]
    return shape[::-1]


def label_map_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """The array shape that :func:`load_label_map` returns, from the header only."""
    try:
        return _image_shape(_nib().load(str(path)).shape)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot read label map {path}: {type(exc).__name__}: {exc}") from exc


def load_label_map(path: str | os.PathLike, *, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a label map in the image's orientation: int64 [H, W] (or [D, H, W] for a volume).

    Reads the reference's ``indexed_mask.nii`` (float64 labels) and ours alike. Raises
    ValueError naming the file when it cannot be read, holds non-integer values, or does not
    have ``expected_shape`` (the image's (H, W)).
    """
    path = Path(path)
    try:
        image = _nib().load(str(path))
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot read label map {path}: {type(exc).__name__}: {exc}") from exc
    data = data.reshape(_image_shape(data.shape)[::-1]).T
    if data.ndim not in (2, 3):
        raise ValueError(f"label map {path} must be 2-D or 3-D, got shape {data.shape}")
    if expected_shape is not None and tuple(data.shape) != tuple(expected_shape):
        raise ValueError(f"label map {path} has shape {tuple(data.shape)} but its image has shape "
                         f"{tuple(expected_shape)}")
    if not np.issubdtype(data.dtype, np.integer):
        if not np.isfinite(data).all() or not (data == np.round(data)).all():
            raise ValueError(f"label map {path} must hold integer labels, got non-integer values")
    return np.ascontiguousarray(data.astype(np.int64))
