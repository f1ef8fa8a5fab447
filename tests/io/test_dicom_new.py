"""A new CT instance for pixels without a DICOM header: conformant, deterministic UIDs, exact HU."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from ratmir.io import read_dicom, read_dicom_series
from ratmir.io.dicom_new import NewSeries, write_new_ct_slice

SERIES = NewSeries(key="Cranium.inv3 0", patient_id="invesalius-cranium", series_description="simulated quarter dose",
                   pixel_spacing_mm=(0.95, 0.9), slice_thickness_mm=1.5)


def test_a_series_of_new_slices(tmp_path) -> None:
    rng = np.random.default_rng(0)
    slices = [rng.normal(40, 300, (48, 40)).clip(-1024, 3071) for _ in range(3)]
    for i, pixels in enumerate(slices):
        write_new_ct_slice(pixels, tmp_path / f"s{i}.dcm", series=SERIES, instance=i + 1, z_mm=1.5 * i,
                           derivation=f"slice {i} of Cranium.inv3")
    datasets = [pydicom.dcmread(tmp_path / f"s{i}.dcm") for i in range(3)]
    assert len({d.SeriesInstanceUID for d in datasets}) == 1 and len({d.SOPInstanceUID for d in datasets}) == 3
    assert len({d.StudyInstanceUID for d in datasets}) == 1 and len({d.FrameOfReferenceUID for d in datasets}) == 1
    first = datasets[0]
    assert first.SOPClassUID == pydicom.uid.CTImageStorage and first.Modality == "CT"
    assert list(first.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"] and first.RescaleType == "HU"
    assert [float(v) for v in first.PixelSpacing] == [0.95, 0.9] and float(first.SliceThickness) == 1.5
    assert first.PatientID == "invesalius-cranium" and "Cranium.inv3" in first.DerivationDescription
    assert [float(d.ImagePositionPatient[2]) for d in datasets] == [0.0, 1.5, 3.0]
    for i, pixels in enumerate(slices):
        assert np.abs(read_dicom(tmp_path / f"s{i}.dcm").pixels - pixels).max() <= 0.05 + 1e-4
    assert len(read_dicom_series(tmp_path)) == 3
    # the same series key and instance give the same UIDs (a rerun writes the same series)
    again = write_new_ct_slice(slices[0], tmp_path / "again.dcm", series=SERIES, instance=1, z_mm=0.0, derivation="x")
    assert pydicom.dcmread(again).SOPInstanceUID == first.SOPInstanceUID
    if shutil.which("dciodvfy") is not None:
        import subprocess

        out = subprocess.run(["dciodvfy", str(tmp_path / "s0.dcm")], capture_output=True, text=True, timeout=60)
        assert [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")] == []


def test_bad_input_is_refused_and_nothing_written(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"finite \[H, W\] array, got shape \(2, 3, 4\)"):
        write_new_ct_slice(np.zeros((2, 3, 4)), tmp_path / "a.dcm", series=SERIES, instance=1, z_mm=0, derivation="")
    with pytest.raises(ValueError, match="non-finite"):
        write_new_ct_slice(np.full((4, 4), np.nan), tmp_path / "a.dcm", series=SERIES, instance=1, z_mm=0,
                           derivation="")
    with pytest.raises(ValueError, match="instance must be an int >= 1, got 0"):
        write_new_ct_slice(np.zeros((4, 4)), tmp_path / "a.dcm", series=SERIES, instance=0, z_mm=0, derivation="")
    assert list(tmp_path.iterdir()) == []
