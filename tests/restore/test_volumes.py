"""Volumes wherever `ratmir regions` reads them: Enhanced multi-frame DICOM and multi-page TIFF
stacks are restored frame by frame with the volume's region maps and written back as volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from ratmir_testdata import write_tiny_ct_model

from ratmir.io import read_dicom
from ratmir.restore import RestoreConfig, restore_files
from ratmir.restore import files as restore_module


@pytest.fixture()
def segment_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, ...], bool]]:
    """(pixel shape, is_volume) of every region map restore computes."""
    calls: list[tuple[tuple[int, ...], bool]] = []
    real = restore_module.segment_pixels

    def spy(pixels, *, is_volume, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls.append((tuple(pixels.shape), is_volume))
        return real(pixels, is_volume=is_volume, **kwargs)

    monkeypatch.setattr(restore_module, "segment_pixels", spy)
    return calls


def _restore(inputs: Path, model: Path, out: Path):  # noqa: ANN202
    report = restore_files(RestoreConfig(inputs=(inputs,), model=model, out=out, regions="grid", progress=False))
    assert report.ok, report.failures
    return report


def test_enhanced_multiframe_ct_frame_by_frame(tmp_path, segment_calls) -> None:
    from pydicom.data import get_testdata_file

    source = get_testdata_file("eCT_Supplemental.dcm", download=False)  # pydicom-data: 2 frames, 512x512
    if source is None:
        pytest.skip("pydicom-data's eCT_Supplemental.dcm is not installed")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ect.dcm").write_bytes(Path(source).read_bytes())
    model = write_tiny_ct_model(tmp_path / "model.safetensors")
    _restore(tmp_path / "in", model, tmp_path / "out")
    assert segment_calls == [((2, 512, 512), True)]  # one region map for the volume
    before, after = read_dicom(tmp_path / "in" / "ect.dcm"), read_dicom(tmp_path / "out" / "ect.dcm")
    assert after.pixels.shape == before.pixels.shape == (2, 512, 512)
    ds, src = pydicom.dcmread(tmp_path / "out" / "ect.dcm"), pydicom.dcmread(source)
    assert ds.SOPClassUID == src.SOPClassUID and int(ds.NumberOfFrames) == 2
    assert len(ds.PerFrameFunctionalGroupsSequence) == 2 and ds.ImageType[0] == "DERIVED"
    assert ds.SOPInstanceUID != src.SOPInstanceUID and ds.SeriesInstanceUID != src.SeriesInstanceUID
    diff = np.abs(after.pixels - before.pixels)
    assert 0 < diff.mean() < 500 and diff[0].mean() > 0 and diff[1].mean() > 0  # both frames restored


def test_multipage_tiff_stack(tmp_path, segment_calls) -> None:
    import tifffile

    stack = np.random.default_rng(0).integers(0, 3000, (4, 40, 36), dtype=np.uint16)
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "stack.tif", stack, photometric="minisblack")  # four grey pages
    model = write_tiny_ct_model(tmp_path / "model.safetensors")
    _restore(tmp_path / "in", model, tmp_path / "out")
    assert segment_calls == [((4, 40, 36), True)]  # one region map for the volume
    with tifffile.TiffFile(tmp_path / "out" / "stack.tiff") as tif:
        assert len(tif.pages) == 4
        restored = tif.series[0].asarray()
    assert restored.shape == (4, 40, 36) and restored.dtype == np.uint16
    assert np.abs(restored.astype(float) - stack).mean() > 0
