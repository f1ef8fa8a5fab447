from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ratmir.io import read_dicom, write_dicom_like, write_nifti


@pytest.fixture()
def make_series(real_ct_path):
    """Write a DICOM series of the 128x128 pydicom CT slice: ``n`` slices 2 mm apart in ``folder``,
    with HU offsets ``offset`` and the given PatientID / Modality."""
    base = read_dicom(real_ct_path).dataset

    def make(folder: Path, *, patient: str, n: int = 3, offset: float = 0.0, modality: str = "CT",
             series_uid: str | None = None, positions: list[float] | None = None, shape_crop: int | None = None):
        from pydicom.uid import generate_uid

        uid = series_uid or generate_uid()
        hu = read_dicom(real_ct_path).pixels
        for z, position in enumerate(positions if positions is not None else [2.0 * z for z in range(n)]):
            ds = base.copy()
            ds.PatientID, ds.Modality = patient, modality
            ds.ImagePositionPatient = [0.0, 0.0, float(position)]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            pixels = hu + offset + z
            if shape_crop:
                pixels = pixels[:shape_crop, :shape_crop]
            write_dicom_like(ds, pixels, folder / f"slice{z:03d}.dcm", series_uid=uid)
        return folder

    return make


@pytest.fixture()
def make_mayo(tmp_path, make_series):
    """A tiny AAPM-Mayo-like layout: root/<patient>/{full_1mm,quarter_1mm}/*.dcm."""

    def make(patients=("L001", "L002"), n: int = 3) -> Path:
        root = tmp_path / "mayo"
        for patient in patients:
            make_series(root / patient / "full_1mm", patient=patient, n=n)
            make_series(root / patient / "quarter_1mm", patient=patient, n=n, offset=15.0)
        return root

    return make


@pytest.fixture()
def make_nifti_pairs(tmp_path):
    """root/{full,low}/<subject>.nii.gz volumes [D, 32, 32] with 2 mm slices."""

    def make(subjects=("s1", "s2"), depth: int = 4, low_shape=None) -> Path:
        root = tmp_path / "nifti"
        rng = np.random.default_rng(0)
        for s in subjects:
            full = rng.uniform(0, 20, (depth, 32, 32)).astype(np.float32)
            low = full + rng.normal(0, 2, full.shape).astype(np.float32)
            if low_shape is not None:
                low = np.zeros(low_shape, np.float32)
            affine = np.diag([1.5, 1.5, 2.0, 1.0])
            write_nifti(root / "full" / f"{s}.nii.gz", full, affine=affine)
            write_nifti(root / "low" / f"{s}.nii.gz", np.clip(low, 0, None), affine=affine)
        return root

    return make
