"""Reading and writing medical images in physical units.

- DICOM (pydicom; HU through RescaleSlope/Intercept; compressed syntaxes via pylibjpeg):
  :func:`read_dicom`, :func:`read_dicom_series`, :func:`write_dicom_like`.
- NIfTI (nibabel; affine kept): :func:`read_nifti`, :func:`write_nifti`.
- PNG 8/16-bit and TIFF: :func:`read_png`, :func:`write_png`, :func:`read_tiff`, :func:`write_tiff`.
- Whole-slide images (OpenSlide): :class:`SlideReader`.

Arrays use SimpleITK's order: [H, W] (or [H, W, 3]) for an image, [D, H, W] for a volume.
"""

from .dicom import (
    DicomImage, read_dicom, read_dicom_header, read_dicom_series, rescale_slope, slice_position, write_dicom_like,
)
from .nifti import NiftiImage, read_nifti, write_nifti
from .raster import read_png, read_tiff, write_png, write_tiff
from .wsi import SlideReader

__all__ = [
    "DicomImage", "read_dicom", "read_dicom_header", "read_dicom_series", "slice_position", "rescale_slope", "write_dicom_like",
    "NiftiImage", "read_nifti", "write_nifti",
    "read_png", "write_png", "read_tiff", "write_tiff", "SlideReader",
]
