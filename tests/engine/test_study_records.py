from __future__ import annotations

import doctest
import json
from pathlib import Path

import yaml

from ratmir.engine import study_records
from ratmir.engine.study_layout import train_record
from ratmir.engine.study_records import expected_config, setting_differences
from ratmir.engine.study_spec import load_study

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_doctests() -> None:
    assert doctest.testmod(study_records).failed == 0


def test_setting_differences_name_each_setting(tmp_path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "seeds": [3], "reference": "a", "datasets": {"ct": {"root": str(tmp_path / "data" / "ct")}},
        "experiments": [{"name": "a", "config": str(CONFIGS / "smoke.yaml"), "dataset": "ct",
                         "set": ["optim.lr=1e-3"]}]}))
    out = tmp_path / "out"
    spec = load_study(spec_path, out=out)
    a = spec.experiments[0]
    assert setting_differences(spec, out, a, 3) == []  # no record yet: nothing to compare
    config = expected_config(spec, a, 3)
    assert config["optim"]["lr"] == 1e-3 and config["train"]["seed"] == 3
    record = train_record(out, "a", 3)
    record.parent.mkdir(parents=True)
    # the same settings trained on another machine: the dataset folder differs only by its prefix
    config["data"]["root"] = "/another/machine/studies/x/datasets/ct"
    record.write_text(json.dumps({"config": config}))
    assert setting_differences(spec, out, a, 3) == []
    config["data"]["root"] = "/another/machine/studies/x/datasets/ct_medsam"  # other data
    config["optim"]["betas"] = [0.5, 0.999]
    config["model"]["options"]["extra"] = 1
    record.write_text(json.dumps({"config": config}))
    assert setting_differences(spec, out, a, 3) == [
        "data.root: recorded 'ct_medsam', spec 'ct'",
        "model.options.extra: recorded 1, spec (not recorded)",
        "optim.betas: recorded [0.5, 0.999], spec [0.9, 0.999]"]
    record.write_text(json.dumps({"seconds": 1.0}))  # a record without its settings
    assert setting_differences(spec, out, a, 3) == ["config: not recorded"]
