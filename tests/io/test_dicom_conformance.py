"""Derived DICOM output on real files shipped with pydicom / pydicom-data: DERIVED image type,
one modality transform, palette colour, big-endian and meta-less sources, Enhanced CT/MR."""

from __future__ import annotations

import copy
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from ratmir.io import SPATIAL_RESAMPLING, looks_like_dicom, read_dicom, write_dicom_like


def shipped(name: str) -> str:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} is not shipped with this pydicom / pydicom-data")
    return path


def errors_of(path) -> set[str]:
    """dciodvfy's error lines for ``path`` (dicom3tools)."""
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return {line.strip() for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")}


def assert_no_new_errors(source, written) -> None:
    """The validator finds no error in ``written`` that ``source`` did not have already."""
    if shutil.which("dciodvfy") is None:
        return  # apt-get install dicom3tools to validate too
    assert errors_of(written) - errors_of(source) == set()


def test_validator_is_installed() -> None:
    """Reports (as a skip) that the dciodvfy checks of the tests below did not run."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy not found (apt-get install dicom3tools): written files checked with pydicom only")


def test_derived_ct_slice_conforms(tmp_path) -> None:
    src = read_dicom(shipped("CT_small.dcm"))
    out = write_dicom_like(src.dataset, src.pixels - 10.25, tmp_path / "o.dcm", series_uid="1.2.3.4",
                           series_description="ratmir RAT", derivation="denoised by ratmir",
                           derivation_code=SPATIAL_RESAMPLING, sop_instance_uid="1.2.3.4.5")
    ds = pydicom.dcmread(out)
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
    assert ds.DerivationDescription == "denoised by ratmir" and ds.SeriesDescription == "ratmir RAT"
    assert ds.DerivationCodeSequence[0].CodeValue == "113085"
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == src.dataset.SOPInstanceUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.5"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.RescaleType == "HU" and [p.name for p in tmp_path.iterdir()] == ["o.dcm"]  # no temporary file left
    assert np.abs(read_dicom(out).pixels - (src.pixels - 10.25)).max() <= 0.05 + 1e-4
    assert_no_new_errors(shipped("CT_small.dcm"), out)


def test_modality_lut_sequence_becomes_one_rescale(tmp_path) -> None:
    src = read_dicom(shipped("mlut_18.dcm"))
    assert "ModalityLUTSequence" in src.dataset
    values = src.pixels * 0.5 + 100.3
    out = write_dicom_like(src.dataset, values, tmp_path / "o.dcm")
    ds = pydicom.dcmread(out)
    assert "ModalityLUTSequence" not in ds and list(ds.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    back = apply_modality_lut(ds.pixel_array, ds)  # what any reader applies: the rescale alone
    assert np.abs(back - values).max() <= float(ds.RescaleSlope) / 2 + 1e-6
    assert ds.RescaleType == src.dataset.ModalityLUTSequence[0].ModalityLUTType
    assert_no_new_errors(shipped("mlut_18.dcm"), out)


@pytest.mark.parametrize("name", ["OT-PAL-8-face.dcm", "gdcm-US-ALOKA-16_big.dcm"])
def test_palette_colour_is_read_and_written_as_rgb(tmp_path, name) -> None:
    path = shipped(name)
    src = read_dicom(path)
    raw = pydicom.dcmread(path, force=True)
    assert src.pixels.shape == (raw.Rows, raw.Columns, 3) and 0 <= src.pixels.min() and src.pixels.max() <= 255
    out = write_dicom_like(src.dataset, src.pixels, tmp_path / "o.dcm")
    ds = pydicom.dcmread(out)
    assert ds.PhotometricInterpretation == "RGB" and ds.SamplesPerPixel == 3 and ds.BitsAllocated == 8
    assert not any("PaletteColorLookupTable" in keyword for keyword in ds.dir())
    np.testing.assert_array_equal(ds.pixel_array, src.pixels.astype(np.uint8))
    assert list(ds.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert_no_new_errors(path, out)
    with pytest.raises(ValueError, match=r"colour source with 1 frame\(s\) must be \[H, W\] x 3 \(RGB\), got shape"):
        write_dicom_like(src.dataset, src.pixels[..., 0], tmp_path / "grey.dcm")
    assert not (tmp_path / "grey.dcm").exists()


@pytest.mark.parametrize("big,little", [("MR_small_bigendian.dcm", "MR_small.dcm"),
                                        ("emri_small_big_endian.dcm", "emri_small.dcm")])
def test_big_endian_round_trip(tmp_path, big, little) -> None:
    src = read_dicom(shipped(big))
    np.testing.assert_array_equal(src.pixels, read_dicom(shipped(little)).pixels)
    values = src.pixels + 0.5
    out = write_dicom_like(src.dataset, values, tmp_path / "o.dcm")
    ds = pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.PatientName == src.dataset.PatientName and ds.Rows == src.dataset.Rows
    assert np.abs(read_dicom(out).pixels - values).max() <= 1e-3
    assert list(ds.ImageType[:1]) == ["DERIVED"]
    if big.startswith("MR_small"):
        assert_no_new_errors(shipped(big), out)


def test_dicom_without_file_meta_is_read(tmp_path) -> None:
    path = shipped("OT-PAL-8-face.dcm")
    with open(path, "rb") as f:
        assert f.read(132)[128:132] != b"DICM"  # really no preamble / file meta
    assert looks_like_dicom(path) and read_dicom(path).pixels.shape == (480, 640, 3)
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(b"\x08\x00" + b"\x01" * 300)  # starts like a dataset, is none
    with pytest.raises(ValueError, match="fake.dcm: not a readable DICOM file"):
        read_dicom(fake)


def test_enhanced_ct_frames_round_trip(tmp_path) -> None:
    path = shipped("eCT_Supplemental.dcm")
    src = read_dicom(path)
    raw = pydicom.dcmread(path)
    pvt = raw.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    assert src.is_volume and src.modality == "CT" and src.pixels.shape == (2, 512, 512)
    np.testing.assert_allclose(src.pixels, raw.pixel_array * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept))
    values = src.pixels * 0.75 - 7.3
    out = write_dicom_like(src.dataset, values, tmp_path / "o.dcm", derivation="denoised")
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == raw.SOPClassUID and int(ds.NumberOfFrames) == 2
    assert "RescaleSlope" not in ds and list(ds.ImageType[:2]) == ["DERIVED", "PRIMARY"]  # PS3.3 C.8.16.1
    shared = ds.SharedFunctionalGroupsSequence[0]
    assert list(shared.CTImageFrameTypeSequence[0].FrameType[:2]) == ["DERIVED", "PRIMARY"]
    assert shared.DerivationImageSequence[0].DerivationDescription == "denoised"
    assert shared.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID == raw.SOPInstanceUID
    assert ds.SourceImageEvidenceSequence[0].StudyInstanceUID == raw.StudyInstanceUID
    for mine, theirs in zip(ds.PerFrameFunctionalGroupsSequence, raw.PerFrameFunctionalGroupsSequence, strict=True):
        assert mine.PlanePositionSequence[0].ImagePositionPatient == theirs.PlanePositionSequence[0].ImagePositionPatient
        assert mine.FrameContentSequence[0].DimensionIndexValues == theirs.FrameContentSequence[0].DimensionIndexValues
    new = shared.PixelValueTransformationSequence[0]
    stored = ds.pixel_array
    for frame in range(2):
        back = stored[frame] * float(new.RescaleSlope) + float(new.RescaleIntercept)
        assert np.abs(back - values[frame]).max() <= float(new.RescaleSlope) / 2 + 1e-6
    np.testing.assert_allclose(read_dicom(out).pixels, values, atol=float(new.RescaleSlope) / 2 + 1e-4)
    # the source maps stored values to rCBF with the rescale's own line: re-expressed for the new values
    rwv = shared.RealWorldValueMappingSequence[0]
    np.testing.assert_allclose(stored * rwv.RealWorldValueSlope + rwv.RealWorldValueIntercept,
                               stored * float(new.RescaleSlope) + float(new.RescaleIntercept), atol=1e-6)
    assert_no_new_errors(path, out)
    with pytest.raises(ValueError, match=r"grey source with 2 frame\(s\) must be \[2, H, W\], got shape \(512, 512\)"):
        write_dicom_like(src.dataset, values[0], tmp_path / "one.dcm")


def test_enhanced_per_frame_rescale(tmp_path) -> None:
    raw = pydicom.dcmread(shipped("eCT_Supplemental.dcm"))
    shared = raw.SharedFunctionalGroupsSequence[0]
    pvt = shared.PixelValueTransformationSequence
    for frame, intercept in zip(raw.PerFrameFunctionalGroupsSequence, ("-1024", "-1000"), strict=True):
        frame.PixelValueTransformationSequence = pydicom.Sequence([copy.deepcopy(pvt[0])])
        frame.PixelValueTransformationSequence[0].RescaleIntercept = intercept
    raw.save_as(tmp_path / "both.dcm")  # also left in the shared item (invalid): the per-frame items win
    del shared.PixelValueTransformationSequence
    raw.save_as(tmp_path / "per_frame.dcm")
    both, per_frame = read_dicom(tmp_path / "both.dcm"), read_dicom(tmp_path / "per_frame.dcm")
    np.testing.assert_array_equal(both.pixels, per_frame.pixels)
    src = read_dicom(tmp_path / "both.dcm")
    stored = raw.pixel_array
    np.testing.assert_array_equal(src.pixels[0], stored[0] - 1024.0)
    np.testing.assert_array_equal(src.pixels[1], stored[1] - 1000.0)
    out = write_dicom_like(src.dataset, src.pixels, tmp_path / "o.dcm")
    ds = pydicom.dcmread(out)
    assert "PixelValueTransformationSequence" not in ds.SharedFunctionalGroupsSequence[0]
    assert all("PixelValueTransformationSequence" in f for f in ds.PerFrameFunctionalGroupsSequence)
    np.testing.assert_allclose(read_dicom(out).pixels, src.pixels, atol=1e-3)


def test_enhanced_mr_without_functional_groups(tmp_path) -> None:
    src = read_dicom(shipped("emri_small.dcm"))
    assert src.pixels.shape == (10, 64, 64) and src.modality == "MR"
    out = write_dicom_like(src.dataset, src.pixels / 3, tmp_path / "o.dcm")
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == src.dataset.SOPClassUID and int(ds.NumberOfFrames) == 10
    pvt = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    assert pvt.RescaleType == "US"
    np.testing.assert_allclose(read_dicom(out).pixels, src.pixels / 3, atol=float(pvt.RescaleSlope) / 2 + 1e-5)


@pytest.mark.parametrize("name", ["CT_small.dcm", "eCT_Supplemental.dcm"])
def test_large_intercept_is_written_exactly(tmp_path, name) -> None:
    """A 7-digit intercept (PET activities) must not be rounded to 6 significant digits."""
    src = read_dicom(shipped(name))
    values = src.pixels * 10 + 1234567.0
    out = write_dicom_like(src.dataset, values, tmp_path / "o.dcm")
    ds = pydicom.dcmread(out)
    rescale = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0] if src.is_volume else ds
    assert float(rescale.RescaleIntercept) == np.floor(values.min()) and len(str(rescale.RescaleIntercept)) <= 16
    assert np.abs(read_dicom(out).pixels - values).max() <= float(rescale.RescaleSlope) / 2 + 0.07  # float32 at 1e6


def test_monochrome1_keeps_its_display(tmp_path) -> None:
    """MONOCHROME1 (low values white, e.g. CR) stays MONOCHROME1: MONOCHROME2 would invert the image."""
    path = shipped("RG3_UNCI.dcm")
    src = read_dicom(path)
    assert src.dataset.PhotometricInterpretation == "MONOCHROME1"
    out = write_dicom_like(src.dataset, src.pixels, tmp_path / "o.dcm")
    ds = pydicom.dcmread(out)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    np.testing.assert_allclose(read_dicom(out).pixels, src.pixels, atol=float(ds.RescaleSlope) / 2 + 1e-4)
    assert_no_new_errors(path, out)
