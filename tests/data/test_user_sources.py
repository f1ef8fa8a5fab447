from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.data import PairedDataset
from ratmir.data.prepare import PrepareConfig, prepare_dataset
from ratmir.data.user_sources import dose_word


def _prepare(task, out, *sources, **kw):
    return prepare_dataset(PrepareConfig(task=task, out=out, sources=tuple(sources), progress=False,
                                         regions_backend="felzenszwalb", **kw))


def test_dose_words() -> None:
    assert dose_word("full_1mm") == ("full", "1mm") and dose_word("quarter_1mm") == ("low", "1mm")
    assert dose_word("Low Dose Images")[0] == "low" and dose_word("Full Dose Images")[1] == dose_word("Low Dose Images")[1]
    assert dose_word("series1")[0] is None


def test_mayo_layout_pairs_by_position_and_splits_by_patient(tmp_path, make_mayo) -> None:
    root = make_mayo()
    report = _prepare("ct", tmp_path / "ds", root)
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert report.counts == {"train": 3, "val": 0, "test": 3}  # 3 slices 2 mm apart: no room for a val block
    assert set(manifest["subjects"]["train"]).isdisjoint(manifest["subjects"]["test"])
    assert manifest["split_rules"]["user"]["val"]["blocks_of"] == []
    item = PairedDataset(tmp_path / "ds", "test")[0]
    # acquired pairs are written as they are: quarter = full + 15 HU in the synthetic layout
    diff = (item["lq"] - item["hq"]) * 4096
    assert float(diff.mean()) == pytest.approx(15.0, abs=0.2)
    record = manifest["degradation"]["per_image"][item["name"]]
    assert record["kind"] == "acquired pair" and "quarter_1mm" in record["lq"]


def test_dicom_series_are_degraded_and_nifti_pairs_sliced(tmp_path, make_series, make_nifti_pairs) -> None:
    folder = tmp_path / "series"
    make_series(folder / "a", patient="A", n=2)
    make_series(folder / "b", patient="B", n=2)
    _prepare("ct", tmp_path / "ct", folder)
    manifest = json.loads((tmp_path / "ct" / "dataset.json").read_text())
    assert all(r["kind"] == "simulated" for r in manifest["degradation"]["per_image"].values())
    assert manifest["sources"][0]["kind"].startswith("full-dose CT")

    pairs = make_nifti_pairs(subjects=("only",), depth=12)  # one volume: contiguous blocks 10 mm apart
    _prepare("pet", tmp_path / "pet", pairs)
    manifest = json.loads((tmp_path / "pet" / "dataset.json").read_text())
    rule = manifest["split_rules"]["user"]
    assert rule["rule"].startswith("contiguous") and rule["test_positions"][0] - rule["train_positions"][1] >= 10
    assert len(PairedDataset(tmp_path / "pet", "train")) + len(PairedDataset(tmp_path / "pet", "test")) < 12


def test_missing_quarter_dose_slice_is_named(tmp_path, make_mayo) -> None:
    root = make_mayo()
    missing = root / "L002" / "quarter_1mm" / "slice001.dcm"
    missing.unlink()
    with pytest.raises(ValueError, match=r"L002/full_1mm/slice001.dcm: no quarter-dose slice"):
        _prepare("ct", tmp_path / "ds", root)
    assert not (tmp_path / "ds").exists()


def test_missing_nifti_partner_and_shape_mismatch(tmp_path, make_nifti_pairs) -> None:
    root = make_nifti_pairs()
    (root / "low" / "s2.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"full/s2.nii.gz: no low-dose partner; expected .*low/s2.nii.gz"):
        _prepare("pet", tmp_path / "ds", root)
    root = make_nifti_pairs(low_shape=(4, 30, 32))
    with pytest.raises(ValueError, match=r"low/s1.nii.gz has shape \(4, 30, 32\) but .*full/s1.nii.gz has \(4, 32, 32\)"):
        _prepare("pet", tmp_path / "ds", root)
    assert not (tmp_path / "ds").exists()


def test_non_ct_dicom_is_refused(tmp_path, make_series) -> None:
    folder = tmp_path / "series"
    make_series(folder / "a", patient="A", n=2)
    make_series(folder / "mr", patient="B", n=1, modality="MR")
    with pytest.raises(ValueError, match=r"mr/slice000.dcm: expected a CT image, got Modality 'MR'"):
        _prepare("ct", tmp_path / "ds", folder)


def test_cli_corrupt_file_names_it_and_keeps_the_old_dataset(tmp_path, make_series, make_nifti_pairs) -> None:
    good = make_nifti_pairs()
    _prepare("pet", tmp_path / "ds", good)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ds").rglob("*")}
    folder = tmp_path / "series"
    make_series(folder / "a", patient="A", n=2)
    make_series(folder / "b", patient="B", n=2)
    truncated = folder / "a" / "slice001.dcm"  # header intact, pixel data cut: fails mid-run
    truncated.write_bytes(truncated.read_bytes()[:-5000])
    args = ["prepare", "ct", "--out", str(tmp_path / "ds"), "--source", str(folder), "--force",
            "--backend", "felzenszwalb"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "slice001.dcm" in result.output, result.output
    (folder / "a" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(64))  # garbage
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "broken.dcm: expected a CT image" in result.output, result.output
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ds").rglob("*")} == before  # nothing lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "nifti", "series"]  # no temp folder left


def test_pathology_folder_of_images(tmp_path) -> None:
    from skimage import data

    from ratmir.io import write_png

    rgb = np.asarray(data.immunohistochemistry())
    write_png(tmp_path / "imgs" / "a.png", rgb[:256, :256])
    write_png(tmp_path / "imgs" / "b.png", rgb[256:, 256:])
    report = _prepare("pathology", tmp_path / "ds", tmp_path / "imgs", tile_size=64)
    # test: one whole image; val: the bottom tile row of the training image (rows are 64 px apart)
    assert report.counts == {"train": 12, "val": 4, "test": 16}
    write_png(tmp_path / "grey" / "g.png", rgb[:64, :64, 0])
    with pytest.raises(ValueError, match=r"g.png: expected an 8-bit RGB image"):
        _prepare("pathology", tmp_path / "ds2", tmp_path / "grey")
