"""A new CT slice as a DICOM instance, for images that come without a DICOM header (a slice of an
InVesalius project or a NIfTI volume), so that they can go through a DICOM pipeline.

The instance carries the CT Image IOD's mandatory modules (PS3.3 A.3: Patient, General Study,
General Series, Frame of Reference, General Equipment, General Image, Image Plane, Image Pixel,
CT Image, SOP Common), with empty Type 2 attributes where nothing is known, ImageType
DERIVED\\SECONDARY\\AXIAL and a DerivationDescription saying where the pixels came from. Pixels
are stored as :func:`ratmir.io.dicom_write.write_dicom_like` stores them (16-bit unsigned, one
RescaleSlope/Intercept in HU), written atomically as Explicit VR Little Endian.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import atomic_path
from .dicom_write import _set_grey_pixels


@dataclass(frozen=True)
class NewSeries:
    """What the slices of one new series share; ``key`` makes its UIDs (the same key, the same UIDs)."""

    key: str  # e.g. the source volume's name: UIDs are derived from it
    patient_id: str
    series_description: str
    pixel_spacing_mm: tuple[float, float]  # (row spacing, column spacing)
    slice_thickness_mm: float | None = None

    def uid(self, part: str) -> str:
        from pydicom.uid import generate_uid

        return generate_uid(entropy_srcs=["ratmir new series", self.key, part])


def write_new_ct_slice(pixels_hu: np.ndarray, path: str | os.PathLike, *, series: NewSeries, instance: int,
                       z_mm: float, derivation: str) -> Path:
    """Write ``pixels_hu`` ([H, W], HU) as instance ``instance`` of ``series`` at table position ``z_mm``."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    pixels = np.asarray(pixels_hu, dtype=np.float64)
    if pixels.ndim != 2 or not np.isfinite(pixels).all():
        raise ValueError(f"pixels_hu must be a finite [H, W] array, got shape {pixels.shape}"
                         + ("" if pixels.ndim != 2 else " with non-finite values"))
    if not isinstance(instance, int) or instance < 1:
        raise ValueError(f"instance must be an int >= 1, got {instance!r}")
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, series.uid(f"instance {instance}")
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "", series.patient_id[:64], "", ""
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = series.uid("study"), "", ""
    ds.ReferringPhysicianName, ds.StudyID, ds.AccessionNumber = "", "", ""
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "CT", series.uid("series"), 1
    ds.Laterality, ds.PatientPosition = "", ""  # Type 2C for CT Image Storage: present, unknown
    ds.SeriesDescription = series.series_description[:64]
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = series.uid("frame of reference"), ""
    ds.Manufacturer = ""
    ds.InstanceNumber = instance
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.DerivationDescription = derivation[:1024]
    ds.PixelSpacing = [float(v) for v in series.pixel_spacing_mm]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.ImagePositionPatient = [0.0, 0.0, float(z_mm)]
    ds.SliceThickness = "" if series.slice_thickness_mm is None else float(series.slice_thickness_mm)
    ds.KVP, ds.AcquisitionNumber = "", ""
    _set_grey_pixels(ds, ds, pixels)  # ds as its own source: Modality CT gives RescaleType HU
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    path = Path(path)
    with atomic_path(path, suffix=".dcm") as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    return path
