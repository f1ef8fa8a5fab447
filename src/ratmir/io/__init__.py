"""Reading and writing medical images in physical units.

- DICOM (pydicom; HU through the modality LUT or RescaleSlope/Intercept, Enhanced multi-frame
  CT/MR with per-frame rescale, palette colour as RGB, big-endian and meta-less files;
  compressed syntaxes via pylibjpeg): :func:`read_dicom`, :func:`read_dicom_series`,
  :func:`write_dicom_like` (DERIVED instances, single- or multi-frame, written atomically);
  :func:`write_new_ct_slice` (a new CT instance for pixels without a DICOM header).
- NIfTI (nibabel; affine kept): :func:`read_nifti`, :func:`write_nifti`.
- PNG 8/16-bit and TIFF: :func:`read_png`, :func:`write_png`, :func:`read_tiff`, :func:`write_tiff`;
  multi-page TIFF stacks: :func:`read_tiff_stack`, :func:`write_tiff_stack`.
- Whole-slide images (OpenSlide): :class:`SlideReader`.

Arrays use SimpleITK's order: [H, W] (or [H, W, 3]) for an image, [D, H, W] for a volume.
Every writer is atomic: a temporary file in the target's folder, renamed when complete.
"""

from .dicom import (
    SMOOTHING, SPATIAL_RESAMPLING, DicomImage, dicom_modality, is_colour, looks_like_dicom, read_dicom,
    read_dicom_header, read_dicom_series, rescale_slope, slice_position, write_dicom_like,
)
from .dicom_new import NewSeries, write_new_ct_slice
from .nifti import NiftiImage, read_nifti, write_nifti
from .raster import read_png, read_tiff, read_tiff_stack, write_png, write_tiff, write_tiff_stack
from .wsi import SlideReader

__all__ = [
    "DicomImage", "read_dicom", "read_dicom_header", "read_dicom_series", "slice_position", "rescale_slope",
    "write_dicom_like", "NewSeries", "write_new_ct_slice", "dicom_modality", "is_colour", "looks_like_dicom", "SMOOTHING", "SPATIAL_RESAMPLING",
    "NiftiImage", "read_nifti", "write_nifti",
    "read_png", "write_png", "read_tiff", "write_tiff", "read_tiff_stack", "write_tiff_stack", "SlideReader",
]
