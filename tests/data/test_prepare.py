from __future__ import annotations

import json

import numpy as np
import pytest

from ratmir.data import PairedDataset
from ratmir.data import prepare as prepare_module
from ratmir.data.layout import REQUIRED_KEYS
from ratmir.data.prepare import PrepareConfig, item_seed, prepare_dataset
from ratmir.tasks import get_task


def _config(task, out, **kw):
    kw = {"limit": 1, **kw}
    return PrepareConfig(task=task, out=out, progress=False, regions_backend="felzenszwalb", **kw)


@pytest.mark.parametrize("task", [
    pytest.param("ct", marks=pytest.mark.slow),  # 512^2 slices where InVesalius is absent: ~10 s
    "pet", "pathology"])
def test_embedded_dataset_end_to_end(tmp_path, task) -> None:
    report = prepare_dataset(_config(task, tmp_path / "ds"))
    assert report.counts == {"train": 1, "test": 1}
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert all(k in manifest for k in REQUIRED_KEYS)
    assert manifest["normalisation"] == get_task(task).normalisation.record()
    assert set(manifest["subjects"]["train"]).isdisjoint(manifest["subjects"]["test"]) or \
        next(iter(manifest["split_rules"].values()))["rule"].startswith("contiguous")
    used = [s for s in manifest["sources"] if s["status"] == "used"]
    assert used and all(s["licence"] for s in used)
    assert set(manifest["missing_sources"]) == {s["id"] for s in manifest["sources"] if s["status"] == "missing"}
    assert manifest["regions"]["backend"] == "felzenszwalb" and manifest["ratmir_version"]
    for split in ("train", "test"):
        item = PairedDataset(tmp_path / "ds", split)[0]
        assert item["lq"].shape == item["hq"].shape and item["lq"].shape[0] == get_task(task).channels
        assert 0 <= float(item["lq"].min()) and float(item["lq"].max()) <= 1
        assert not np.array_equal(item["lq"].numpy(), item["hq"].numpy())
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary folder left


def test_refuses_an_existing_folder_unless_forced(tmp_path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        prepare_dataset(_config("pathology", tmp_path / "ds"))
    with pytest.raises(FileExistsError, match="not a prepared dataset"):
        prepare_dataset(_config("pathology", tmp_path / "ds", force=True))
    assert (tmp_path / "ds" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_interrupted_prepare_leaves_nothing(tmp_path, monkeypatch, failure) -> None:
    prepare_dataset(_config("pathology", tmp_path / "old"))
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    calls = []

    def failing_write(path, image):
        calls.append(path)
        if len(calls) == 3:  # after the first pair, mid-run
            raise failure("interrupted")
        return real_write(path, image)

    real_write = prepare_module.write_image
    monkeypatch.setattr(prepare_module, "write_image", failing_write)
    with pytest.raises(failure):
        prepare_dataset(_config("pathology", tmp_path / "new"))
    with pytest.raises(failure):
        calls.clear()
        prepare_dataset(_config("pathology", tmp_path / "old", force=True))
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # DIR absent, old intact


def test_force_replaces_a_dataset_and_item_seeds_are_stable(tmp_path) -> None:
    prepare_dataset(_config("pathology", tmp_path / "ds"))
    prepare_dataset(_config("pathology", tmp_path / "ds", force=True, limit=2))
    assert len(PairedDataset(tmp_path / "ds", "train")) == 2
    assert item_seed(0, "a") == item_seed(0, "a") != item_seed(1, "a")


def test_ct_emulated_full_dose_noise(real_ct_path) -> None:
    """--ct-noise-hu sets the full-dose noise the simulation emulates: the added (extra) noise of
    a quarter dose is then sqrt(1/0.25 - 1) x that std in a uniform region."""
    from ratmir.data.ct_noise import calibrate_to_slice, most_uniform_roi
    from ratmir.io import read_dicom
    from ratmir.tasks import CTDegradation, simulate_low_dose_ct

    hu = read_dicom(real_ct_path).pixels
    base = CTDegradation(pixel_size_mm=0.5, seed=1)
    own, rec_own = calibrate_to_slice(hu, config=base)
    noisy, rec = calibrate_to_slice(hu, config=base, full_dose_noise_hu=3 * rec_own["full_dose_roi_std_hu"])
    assert rec["emulated_full_dose_std_hu"] > 0 and noisy.incident_photons == pytest.approx(own.incident_photons / 9)
    roi = most_uniform_roi(hu)
    extra = (simulate_low_dose_ct(hu, config=noisy).lq - hu)[roi].std()
    assert extra == pytest.approx(3 ** 0.5 * rec["emulated_full_dose_std_hu"], rel=0.35)
    with pytest.raises(ValueError, match="must be > 0"):
        calibrate_to_slice(hu, config=base, full_dose_noise_hu=0.0)
