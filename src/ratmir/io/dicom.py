"""DICOM: slices, multi-frame instances and series in physical units (HU through the modality
LUT or the per-frame rescale of Enhanced CT/MR), and writing a derived instance that keeps every
tag of its source (:mod:`ratmir.io.dicom_write`).

Compressed transfer syntaxes decode through pydicom's pixel handlers: JPEG-2000 and JPEG
Lossless need the pylibjpeg plugins (or Pillow for JPEG-2000), which ratmir depends on. Big-endian
files and valid files without file meta (no preamble, no ``DICM``) are read too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dicom_frames import frame_rescale, is_enhanced, number_of_frames
from .dicom_write import SMOOTHING, SPATIAL_RESAMPLING, is_colour, rescale_slope, write_dicom_like

__all__ = [
    "DicomImage", "read_dicom", "read_dicom_header", "read_dicom_series", "slice_position", "looks_like_dicom",
    "dicom_modality", "rescale_slope", "write_dicom_like", "is_colour", "SMOOTHING", "SPATIAL_RESAMPLING",
]


@dataclass(frozen=True)
class DicomImage:
    """Pixels in physical units (float32) and the dataset they came from (pixel data attached).

    ``pixels``: [H, W] for a single frame, [frames, H, W] for a multi-frame instance (Enhanced
    CT/MR frames each with their own rescale applied), with a trailing RGB axis ([..., 3]) for
    colour (RGB and YBR as RGB; PALETTE COLOR looked up through its palette, as levels 0-255
    whatever the palette's entry size).
    """

    pixels: np.ndarray
    dataset: object  # pydicom.Dataset

    @property
    def modality(self) -> str:
        """See :func:`dicom_modality`."""
        return dicom_modality(self.dataset)

    @property
    def frames(self) -> int:
        """Number of frames (1 for a single-frame instance)."""
        return number_of_frames(self.dataset)

    @property
    def is_volume(self) -> bool:
        """True for a multi-frame instance: ``pixels`` is [frames, H, W(, 3)]."""
        return self.frames > 1


def dicom_modality(ds: object) -> str:
    """The Modality attribute (``"CT"``, ``"MR"``, ``"PT"``, ``"OT"``, ...; ``""`` when absent).

    Enhanced multi-frame instances carry it at the top level like single-frame ones (Enhanced
    CT says ``"CT"``, Enhanced MR ``"MR"``), so one check serves both.
    """
    return str(getattr(ds, "Modality", "") or "")


def _modality_lut():
    try:
        from pydicom.pixels import apply_modality_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_modality_lut
    return apply_modality_lut


def _colour_lut():
    try:
        from pydicom.pixels import apply_color_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_color_lut
    return apply_color_lut


def looks_like_dicom(path: str | os.PathLike) -> bool:
    """True for a DICOM file: ``DICM`` after the 128-byte preamble, or a dataset without file meta
    whose first element is of group 0008 (or 0002) as the standard's encodings start."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or _starts_like_dataset(head)


def _starts_like_dataset(head: bytes) -> bool:
    return len(head) >= 8 and int.from_bytes(head[:2], "little") in (0x0002, 0x0008) and head[2:4] != b"\xff\xff"


def _dcmread(path: Path, *, require_modality: str | None, stop_before_pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:  # no preamble/file meta: read it as a bare dataset if it is one
            if not looks_like_dicom(path):
                raise
            ds = _read_bare_dataset(path, stop_before_pixels=stop_before_pixels)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable DICOM file: {type(err).__name__}: {err}") from err
    if require_modality is not None and getattr(ds, "Modality", None) != require_modality:
        raise ValueError(
            f"{path}: expected a {require_modality} image, got Modality {getattr(ds, 'Modality', None)!r}"
        )
    return ds


def _read_bare_dataset(path: Path, *, stop_before_pixels: bool):
    """A dataset stored without file meta: its transfer syntax is the encoding pydicom found."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    if "SOPClassUID" not in ds:
        raise InvalidDicomError("no DICOM file meta and no SOP Class UID: not a DICOM dataset")
    implicit, little = ds.original_encoding
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                          ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    return ds


def read_dicom_header(path: str | os.PathLike, *, require_modality: str | None = None) -> object:
    """Read one DICOM file's tags without its pixel data (a ``pydicom.Dataset``), with the
    checks of :func:`read_dicom`: for scanning a large series before decoding any image."""
    return _dcmread(Path(path), require_modality=require_modality, stop_before_pixels=True)


def read_dicom(path: str | os.PathLike, *, require_modality: str | None = None) -> DicomImage:
    """Read one DICOM file: grey pixels in physical units (HU for CT), colour as RGB; shapes as in
    :class:`DicomImage`.

    The modality transform is the Modality LUT Sequence or RescaleSlope/Intercept, or for an
    Enhanced instance each frame's Pixel Value Transformation functional group (per-frame,
    else shared). ``require_modality`` (e.g. ``"CT"``) rejects other modalities with an error
    naming the file.
    """
    path = Path(path)
    ds = _dcmread(path, require_modality=require_modality, stop_before_pixels=False)
    if "PixelData" not in ds:
        raise ValueError(f"{path}: the DICOM file holds no image (no PixelData; SOP class {getattr(ds, 'SOPClassUID', '?')})")
    try:
        pixels = ds.pixel_array
    except Exception as err:  # noqa: BLE001 - missing decoder, truncated data, ...
        raise ValueError(f"{path}: cannot decode pixel data ({ds.file_meta.TransferSyntaxUID.name}): {err}") from err
    if str(getattr(ds, "PhotometricInterpretation", "")) == "PALETTE COLOR":
        try:
            pixels = _palette_to_rgb(pixels, ds)
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"{path}: cannot apply the PALETTE COLOR lookup table: {err}") from err
    elif not is_colour(ds):
        pixels = _to_physical(pixels, ds)
    return DicomImage(pixels=np.asarray(pixels, dtype=np.float32), dataset=ds)


def _palette_to_rgb(indices: np.ndarray, ds: object) -> np.ndarray:
    """RGB levels 0-255 through the palette; 16-bit entries (0-65535) scaled by 255/65535."""
    rgb = _colour_lut()(indices, ds)
    return np.round(rgb / 257.0) if rgb.dtype.itemsize > 1 else rgb


def _to_physical(stored: np.ndarray, ds: object) -> np.ndarray:
    per_frame = frame_rescale(ds) if is_enhanced(ds) and "ModalityLUTSequence" not in ds else None
    if per_frame is None:
        return _modality_lut()(stored, ds)
    slopes, intercepts, _ = per_frame
    if stored.ndim == 2:  # a single frame
        return stored * slopes[0] + intercepts[0]
    return stored * slopes[:, None, None] + intercepts[:, None, None]


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
