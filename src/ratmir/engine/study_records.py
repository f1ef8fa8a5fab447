"""What a finished unit recorded against what the spec would train now.

A finished unit is skipped on its committed files alone (``units/``), so a unit copied from
another study, or trained before a config default changed, would enter the report with settings
the spec does not ask for. :func:`setting_differences` names every such setting: ``ratmir study``
warns with it and the report lists it.

The dataset folder (``data.root``) is compared by its last part: the recorded path is absolute
and machine-local (a clone elsewhere has another prefix); which data it holds is recorded by the
study's dataset fingerprints.

>>> _flat({"train": {"lr": 1e-3, "betas": [0.9, 0.999]}})
{'train.lr': 0.001, 'train.betas': [0.9, 0.999]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import load_config, to_dict
from .study_layout import train_record
from .study_spec import ExperimentSpec, StudySpec

_ABSENT = object()


def expected_config(spec: StudySpec, experiment: ExperimentSpec, seed: int) -> dict[str, Any]:
    """The resolved config (as a dict) the spec trains ``experiment`` at ``seed`` with."""
    return to_dict(load_config(experiment.config, overrides=spec.overrides(experiment, seed)))


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    flat = _flat(config)
    if flat.get("data.root") is not None:
        flat["data.root"] = Path(str(flat["data.root"])).name
    return flat


def setting_differences(spec: StudySpec, out: Path, experiment: ExperimentSpec, seed: int) -> list[str]:
    """``"key: recorded R, spec S"`` for each setting the unit's record holds otherwise than the spec
    (a setting missing on one side reads ``(not recorded)``); empty when they agree or when the unit
    has no record yet."""
    record = train_record(out, experiment.name, seed)
    if not record.is_file():
        return []
    recorded = json.loads(record.read_text()).get("config")
    if not isinstance(recorded, dict):
        return ["config: not recorded"]
    have, want = _comparable(recorded), _comparable(expected_config(spec, experiment, seed))
    return [f"{key}: recorded {_show(have.get(key, _ABSENT))}, spec {_show(want.get(key, _ABSENT))}"
            for key in sorted(have.keys() | want.keys()) if have.get(key, _ABSENT) != want.get(key, _ABSENT)]


def _show(value: Any) -> str:
    return "(not recorded)" if value is _ABSENT else repr(value)
