from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import torch
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.errors import UsageError
from ratmir.io import read_dicom, read_nifti, read_png, write_dicom_like, write_nifti, write_png
from ratmir.models import DnCNN, save_pretrained
from ratmir.restore import RestoreConfig, restore_files
from ratmir.tasks import get_task


@pytest.fixture()
def ct_model(tmp_path):
    torch.manual_seed(0)
    model = DnCNN(features=4, depth=3)
    meta = {"task": "ct", "normalisation": json.dumps(get_task("ct").normalisation.record())}
    return save_pretrained(model, tmp_path / "model.safetensors", metadata=meta)


def _series(folder, real_ct_path, n=3):
    src = read_dicom(real_ct_path)
    for i in range(n):
        ds = src.dataset.copy()
        ds.ImagePositionPatient = [0.0, 0.0, float(i)]
        write_dicom_like(ds, src.pixels, folder / f"IM{i}.dcm", series_uid="1.2.3.99")
    return src


def test_dicom_series_in_series_out(ct_model, real_ct_path, tmp_path) -> None:
    src = _series(tmp_path / "in", real_ct_path)
    report = restore_files(RestoreConfig(inputs=(tmp_path / "in",), model=ct_model, out=tmp_path / "out",
                                         progress=False, regions="felzenszwalb"))
    assert report.ok and len(report.written) == 3
    outs = [read_dicom(p) for p in sorted((tmp_path / "out").glob("*.dcm"))]
    series = {o.dataset.SeriesInstanceUID for o in outs}
    assert len(series) == 1 and "1.2.3.99" not in series
    assert len({o.dataset.SOPInstanceUID for o in outs}) == 3
    ins = [pydicom.dcmread(tmp_path / "in" / f"IM{i}.dcm") for i in range(3)]
    assert all(o.dataset.SOPInstanceUID != i.SOPInstanceUID for o, i in zip(outs, ins))
    for o, i in zip(outs, ins):
        assert o.dataset.PatientName == i.PatientName and o.dataset.StudyInstanceUID == i.StudyInstanceUID
        assert o.dataset.ImagePositionPatient == i.ImagePositionPatient
        assert "ratmir DNCNN" in o.dataset.SeriesDescription and "Restored by ratmir" in o.dataset.DerivationDescription
    # values in HU, changed by the model, but near the input (a 3-layer random DnCNN)
    diff = outs[0].pixels - src.pixels
    assert 0 < np.abs(diff).mean() < 500 and float(outs[0].dataset.RescaleSlope) > 0


def test_long_series_description_keeps_the_ratmir_marker(ct_model, real_ct_path, tmp_path) -> None:
    src = read_dicom(real_ct_path)
    ds = src.dataset.copy()
    ds.SeriesDescription = "x" * 64  # LO at its 64-character limit
    write_dicom_like(ds, src.pixels, tmp_path / "in" / "IM0.dcm", series_description="x" * 64)
    report = restore_files(RestoreConfig(inputs=(tmp_path / "in",), model=ct_model, out=tmp_path / "out",
                                         progress=False, regions="grid"))
    assert report.ok, report.failures
    description = pydicom.dcmread(tmp_path / "out" / "IM0.dcm").SeriesDescription
    assert len(description) <= 64 and description.endswith(" [ratmir DNCNN]") and description.startswith("xxx")


def test_nifti_geometry_and_png_bit_depth(ct_model, tmp_path) -> None:
    affine = np.diag([0.7, 0.7, 2.0, 1.0])
    affine[:3, 3] = [-90, 20, 5]
    write_nifti(tmp_path / "in" / "vol.nii.gz", np.random.default_rng(0).normal(0, 50, (3, 40, 36)), affine=affine)
    write_png(tmp_path / "in" / "img.png", np.random.default_rng(1).integers(0, 65535, (40, 40), dtype=np.uint16))
    report = restore_files(RestoreConfig(inputs=(tmp_path / "in",), model=ct_model, out=tmp_path / "out",
                                         progress=False, regions="grid"))
    assert report.ok, report.failures
    vol = read_nifti(tmp_path / "out" / "vol.nii.gz")
    assert vol.pixels.shape == (3, 40, 36)
    np.testing.assert_allclose(vol.affine, affine)
    assert read_png(tmp_path / "out" / "img.png").dtype == np.uint16


def test_folder_with_corrupt_file_and_cli(ct_model, real_ct_path, tmp_path) -> None:
    _series(tmp_path / "in", real_ct_path, n=2)
    (tmp_path / "in" / "broken.dcm").write_bytes(b"\0" * 300)
    ds = pydicom.dcmread(real_ct_path)
    del ds.PixelData
    ds.save_as(tmp_path / "in" / "noimage.dcm")
    res = CliRunner().invoke(app, ["restore", str(tmp_path / "in"), "--model", str(ct_model),
                                   "--out", str(tmp_path / "out"), "--regions", "felzenszwalb"])
    assert res.exit_code == 1
    assert "2 written, 2 failed" in res.output
    assert "broken.dcm" in res.output and "holds no image" in res.output
    assert len(list((tmp_path / "out").glob("IM*.dcm"))) == 2


def test_refusals(ct_model, tmp_path) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(ValueError, match="inside the input folder"):
        restore_files(RestoreConfig(inputs=(tmp_path / "in",), model=ct_model, out=tmp_path / "in" / "out"))
    rgb = tmp_path / "rgb"
    write_png(rgb / "x.png", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(UsageError, match=r"the model expects 1 channel\(s\); 1 input\(s\) have 3: .*x\.png"):
        restore_files(RestoreConfig(inputs=(rgb,), model=ct_model, out=tmp_path / "o", progress=False))
    assert not (tmp_path / "o").exists()  # refused before anything was created
    plain = save_pretrained(DnCNN(features=4, depth=3), tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="pass --task"):
        restore_files(RestoreConfig(inputs=(rgb,), model=plain, out=tmp_path / "p"))


def test_whole_slide_region_by_region(tmp_path) -> None:
    """A tiled TIFF renamed .svs (OpenSlide's generic-TIFF reader) restores tile by tile."""
    pytest.importorskip("openslide")
    import tifffile

    from ratmir.io import SlideReader
    from ratmir.models import DnCNN

    torch.manual_seed(0)
    model = DnCNN(in_channels=3, features=4, depth=3)
    meta = {"task": "pathology", "normalisation": json.dumps(get_task("pathology").normalisation.record())}
    weights = save_pretrained(model, tmp_path / "m.safetensors", metadata=meta)
    rgb = np.random.default_rng(0).integers(0, 255, (700, 900, 3), dtype=np.uint8)
    slide = tmp_path / "in" / "case.svs"
    slide.parent.mkdir()
    tifffile.imwrite(slide, rgb, tile=(256, 256), photometric="rgb")
    report = restore_files(RestoreConfig(inputs=(slide,), model=weights, out=tmp_path / "out", progress=False,
                                         regions="felzenszwalb"))
    assert report.ok, report.failures
    out = tmp_path / "out" / "case.tiff"
    with SlideReader(out) as restored:
        assert restored.dimensions == (900, 700)
    restored = tifffile.imread(out)
    # DnCNN depth 3 sees 3 pixels around; with a 32-pixel margin tiles equal a one-pass restoration
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        full = (model.eval()(x).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).byte().numpy()
    assert np.abs(restored.astype(int) - full.astype(int)).max() <= 1


def test_bf16_precision_is_close_to_fp32_and_bad_precision_is_refused(ct_model, tmp_path) -> None:
    write_png(tmp_path / "in" / "img.png", np.random.default_rng(1).integers(0, 65535, (40, 40), dtype=np.uint16))
    outs = {}
    for precision in ("fp32", "bf16"):
        report = restore_files(RestoreConfig(inputs=(tmp_path / "in",), model=ct_model, out=tmp_path / precision,
                                             progress=False, regions="grid", precision=precision))
        assert report.ok, report.failures
        outs[precision] = read_png(tmp_path / precision / "img.png").astype(np.float64)
    # 16-bit output of a 4-channel DnCNN: bf16 keeps ~3 significant digits
    assert np.abs(outs["bf16"] - outs["fp32"]).mean() < 0.01 * 65535
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\), got 'half'"):
        RestoreConfig(inputs=(tmp_path / "in",), model=ct_model, out=tmp_path / "x", precision="half")


def test_pixels_outside_the_normalisation_range_are_kept(ct_model, tmp_path) -> None:
    """run_slices normalises in place; values the model never sees still come back as they were."""
    values = np.full((3, 40, 36), 100.0)
    values[:, :5, :5] = 5000.0  # above ct's normalisation range
    values[:, -5:, -5:] = -3000.0  # below it
    write_nifti(tmp_path / "in" / "vol.nii.gz", values, affine=np.eye(4))
    report = restore_files(RestoreConfig(inputs=(tmp_path / "in",), model=ct_model, out=tmp_path / "out",
                                         progress=False, regions="grid"))
    assert report.ok, report.failures
    out = read_nifti(tmp_path / "out" / "vol.nii.gz").pixels
    np.testing.assert_allclose(out[:, :5, :5], 5000.0, rtol=1e-5)
    np.testing.assert_allclose(out[:, -5:, -5:], -3000.0, rtol=1e-5)
