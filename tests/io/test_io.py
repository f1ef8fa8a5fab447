from __future__ import annotations

import numpy as np
import pytest

from ratmir.io import (SlideReader, read_dicom, read_dicom_series, read_nifti, read_png, read_tiff,
                       rescale_slope, write_dicom_like, write_nifti, write_png, write_tiff)


@pytest.fixture()
def ct_path(real_ct_path):
    return real_ct_path


def test_dicom_hu_and_derived_roundtrip(ct_path, tmp_path) -> None:
    src = read_dicom(ct_path, require_modality="CT")
    ds = src.dataset
    raw = ds.pixel_array.astype(np.float32)
    np.testing.assert_allclose(src.pixels, raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    new = src.pixels - 123.45
    out = write_dicom_like(ds, new, tmp_path / "out.dcm", series_uid="1.2.3.4",
                           series_description="ratmir RAT", derivation="denoised")
    back = read_dicom(out)
    assert np.abs(back.pixels - new).max() <= 0.05 + 1e-4  # 0.1 HU steps
    b = back.dataset
    assert b.SOPInstanceUID != ds.SOPInstanceUID and b.SeriesInstanceUID == "1.2.3.4"
    assert b.SeriesDescription == "ratmir RAT" and b.DerivationDescription == "denoised"
    for tag in ("PatientName", "StudyInstanceUID", "PixelSpacing", "ImagePositionPatient", "Modality"):
        assert b.get(tag) == ds.get(tag), tag


def test_dicom_errors(ct_path, tmp_path) -> None:
    with pytest.raises(ValueError, match="expected a MR image, got Modality 'CT'"):
        read_dicom(ct_path, require_modality="MR")
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 200)
    with pytest.raises(ValueError, match="bad.dcm: not a readable DICOM"):
        read_dicom(bad)
    import pydicom

    ds = pydicom.dcmread(ct_path)
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(ValueError, match="holds no image"):
        read_dicom(tmp_path / "nopix.dcm")


def test_dicom_series_sorted_by_position(ct_path, tmp_path) -> None:
    src = read_dicom(ct_path)
    for i, z in enumerate([10.0, -5.0, 2.5]):
        ds = src.dataset.copy()
        ds.ImagePositionPatient = [0.0, 0.0, z]
        write_dicom_like(ds, src.pixels + i, tmp_path / f"s{i}.dcm", series_uid="1.2.9")
    series = read_dicom_series(tmp_path)
    assert [float(s.dataset.ImagePositionPatient[2]) for s in series] == [-5.0, 2.5, 10.0]


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "JPEG-LL.dcm"])
def test_compressed_dicom(name) -> None:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not shipped with this pydicom")
    assert read_dicom(path).pixels.ndim >= 2


def test_rescale_slope() -> None:
    assert rescale_slope(4095) == 0.1
    assert rescale_slope(50) == 0.001
    assert rescale_slope(1e6) == 100


def test_nifti_affine_roundtrip(tmp_path) -> None:
    vol = np.random.default_rng(0).random((3, 5, 7)).astype(np.float32)
    affine = np.array([[0.8, 0, 0, -10], [0, 0.8, 0, 5], [0, 0, 2.5, 30], [0, 0, 0, 1]])
    back = read_nifti(write_nifti(tmp_path / "v.nii.gz", vol, affine=affine))
    np.testing.assert_array_equal(back.pixels, vol)
    np.testing.assert_allclose(back.affine, affine)
    import nibabel

    assert nibabel.load(str(tmp_path / "v.nii.gz")).shape == (7, 5, 3)  # nibabel's [x, y, z]


@pytest.mark.parametrize("dtype,channels", [(np.uint16, 1), (np.uint8, 1), (np.uint8, 3)])
def test_png_roundtrip(tmp_path, dtype, channels) -> None:
    shape = (9, 11) if channels == 1 else (9, 11, 3)
    img = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    back = read_png(write_png(tmp_path / "x.png", img))
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, img)
    with pytest.raises(ValueError, match="PNG needs"):
        write_png(tmp_path / "y.png", img.astype(np.float32))


def test_tiff_roundtrip(tmp_path) -> None:
    img = np.random.default_rng(2).random((6, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(read_tiff(write_tiff(tmp_path / "x.tiff", img)), img)
    (tmp_path / "bad.tiff").write_bytes(b"II*\0garbage")
    with pytest.raises(ValueError, match="bad.tiff: not a readable TIFF"):
        read_tiff(tmp_path / "bad.tiff")


def test_whole_slide_regions(tmp_path) -> None:
    pytest.importorskip("openslide")
    import tifffile

    rgb = np.random.default_rng(3).integers(0, 255, (512, 768, 3), dtype=np.uint8)
    path = tmp_path / "slide.tiff"
    tifffile.imwrite(path, rgb, tile=(256, 256), photometric="rgb")
    with SlideReader(path) as slide:
        assert slide.dimensions == (768, 512)
        region = slide.read(x=100, y=50, width=64, height=32)
    np.testing.assert_array_equal(region, rgb[50:82, 100:164])
    with pytest.raises(ValueError, match="not a slide"):
        SlideReader(tmp_path / "missing.svs")
