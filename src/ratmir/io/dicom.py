"""DICOM: slices and series in physical units (HU through the modality LUT), and writing a
derived slice that keeps every tag of its source.

Compressed transfer syntaxes decode through pydicom's pixel handlers: JPEG-2000 and JPEG
Lossless need the pylibjpeg plugins (or Pillow for JPEG-2000), which ratmir depends on.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DicomImage:
    """Pixels in physical units (float32, [H, W] or [frames, H, W], or [..., 3] for colour) and
    the dataset they came from (pixel data still attached)."""

    pixels: np.ndarray
    dataset: object  # pydicom.Dataset

    @property
    def modality(self) -> str:
        return str(getattr(self.dataset, "Modality", ""))


def _modality_lut():
    try:
        from pydicom.pixels import apply_modality_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_modality_lut
    return apply_modality_lut


def _dcmread(path: Path, *, require_modality: str | None, stop_before_pixels: bool):
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable DICOM file: {type(err).__name__}: {err}") from err
    if require_modality is not None and getattr(ds, "Modality", None) != require_modality:
        raise ValueError(
            f"{path}: expected a {require_modality} image, got Modality {getattr(ds, 'Modality', None)!r}"
        )
    return ds


def read_dicom_header(path: str | os.PathLike, *, require_modality: str | None = None) -> object:
    """Read one DICOM file's tags without its pixel data (a ``pydicom.Dataset``), with the
    checks of :func:`read_dicom`: for scanning a large series before decoding any image."""
    return _dcmread(Path(path), require_modality=require_modality, stop_before_pixels=True)


def read_dicom(path: str | os.PathLike, *, require_modality: str | None = None) -> DicomImage:
    """Read one DICOM file; grey pixels in physical units (HU for CT).

    ``require_modality`` (e.g. ``"CT"``) rejects other modalities with an error naming the file.
    """
    path = Path(path)
    ds = _dcmread(path, require_modality=require_modality, stop_before_pixels=False)
    if "PixelData" not in ds:
        raise ValueError(f"{path}: the DICOM file holds no image (no PixelData; SOP class {getattr(ds, 'SOPClassUID', '?')})")
    try:
        pixels = ds.pixel_array
    except Exception as err:  # noqa: BLE001 - missing decoder, truncated data, ...
        raise ValueError(f"{path}: cannot decode pixel data ({ds.file_meta.TransferSyntaxUID.name}): {err}") from err
    if int(getattr(ds, "SamplesPerPixel", 1)) == 1:
        pixels = _modality_lut()(pixels, ds)
    return DicomImage(pixels=np.asarray(pixels, dtype=np.float32), dataset=ds)


def read_dicom_series(folder: str | os.PathLike, *, require_modality: str | None = None) -> list[DicomImage]:
    """Read every DICOM file of one series in ``folder``, ordered along the patient axis
    (ImagePositionPatient projected on the slice normal, else InstanceNumber)."""
    folder = Path(folder)
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
             and p.name.upper() != "DICOMDIR"]
    if not files:
        raise ValueError(f"{folder}: no files, expected a DICOM series")
    slices = [read_dicom(p, require_modality=require_modality) for p in files]
    series = {str(getattr(s.dataset, "SeriesInstanceUID", "")) for s in slices}
    if len(series) > 1:
        raise ValueError(f"{folder}: holds {len(series)} series ({sorted(series)[:3]}...); expected one")
    return sorted(slices, key=_slice_position)


def _slice_position(image: DicomImage) -> float:
    return slice_position(image.dataset)


def slice_position(ds: object) -> float:
    """Position of a slice along the patient axis (mm): ImagePositionPatient projected on the
    slice normal, else InstanceNumber."""
    pos, ori = getattr(ds, "ImagePositionPatient", None), getattr(ds, "ImageOrientationPatient", None)
    if pos is not None and ori is not None:
        normal = np.cross(np.asarray(ori[:3], float), np.asarray(ori[3:], float))
        return float(np.dot(normal, np.asarray(pos, float)))
    return float(getattr(ds, "InstanceNumber", 0) or 0)


def rescale_slope(span: float) -> float:
    """The finest power-of-ten slope (down to 0.001) at which ``span`` fits in 16 bits.

    A CT slice spanning 4095 HU gets 0.1 HU steps; PET activities spanning 1e6 get 100.
    """
    slope = 1e-3
    while span / slope > 65535:
        slope *= 10
    return float(f"{slope:.0e}")


def write_dicom_like(
    source: object, pixels: np.ndarray, path: str | os.PathLike, *, series_uid: str | None = None,
    series_description: str | None = None, derivation: str | None = None,
) -> Path:
    """Write ``pixels`` (physical units, [H, W]) as a new instance derived from dataset ``source``.

    Every tag of ``source`` is kept except the pixel module, which is rewritten as 16-bit
    unsigned integers with a RescaleSlope/Intercept (see :func:`rescale_slope`); new SOPInstanceUID; SeriesInstanceUID set to
    ``series_uid`` (a new one if None); SeriesDescription/DerivationDescription as given.
    The file is written uncompressed (Explicit VR Little Endian).
    """
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim != 2 or not np.isfinite(pixels).all():
        raise ValueError(f"pixels must be a finite [H, W] array, got shape {pixels.shape}")
    if not isinstance(source, pydicom.Dataset):
        raise TypeError(f"source must be a pydicom.Dataset, got {type(source).__name__}")
    ds = copy.deepcopy(source)  # Dataset.copy() is shallow: edits would reach the source
    if not hasattr(ds, "file_meta"):
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    intercept = float(np.floor(pixels.min()))
    slope = rescale_slope(float(pixels.max()) - intercept)
    stored = np.round((pixels - intercept) / slope)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope = f"{intercept:.6g}", f"{slope:.6g}"
    for tag in ("NumberOfFrames", "LargestImagePixelValue", "SmallestImagePixelValue", "PixelPaddingValue"):
        if tag in ds:
            delattr(ds, tag)
    ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SeriesInstanceUID = series_uid or generate_uid()
    if series_description is not None:
        ds.SeriesDescription = series_description[:64]
    if derivation is not None:
        ds.DerivationDescription = derivation[:1024]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
