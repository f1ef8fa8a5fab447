"""``ratmir demo --pretrained`` (``make demo``): the packaged models on the embedded test split.

The fast path of the demo: no training. It prepares only the test split of the task's embedded
dataset (each image is the one a full ``ratmir prepare`` makes, region maps by the backend the
model was trained with), scores the packaged RAT and its packaged same-engine baseline there,
restores the held-out images with ``ratmir restore --model NAME`` and writes the same
``report.md``, figures and ``index.md`` as the training demo, into ``OUT/<task>``
(``demo-pretrained/<task>`` by default). ``demo.json`` records the models' SHA-256, so a folder
made with other weights is refused like any demo folder made with other settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._files import write_text_atomic
from .demo import (DEMO_BASELINE, DEMO_FILE, DEMO_FORMAT, TIMINGS_FILE, DemoConfig, DemoFolderError, StageClock,
                   _check_dataset, _ct_noise, check_demo_folder, comparison_figures, finish_demo, restore_held_out)

# the packaged models of each task's demo: (RAT, baseline)
PRETRAINED_MODELS = {task: (task, f"{task}-{baseline}") for task, baseline in DEMO_BASELINE.items()}


def pretrained_tasks() -> list[str]:
    """The tasks whose two demo models are both packaged."""
    from .models.hub import is_installed, packaged_models

    models = packaged_models()
    names = {name for name, entry in models.items() if is_installed(entry)}
    return [task for task, pair in PRETRAINED_MODELS.items() if set(pair) <= names]


def _entries(task: str) -> dict[str, Any]:
    from .models.hub import packaged_models

    models = packaged_models()  # the index, read once
    missing = [name for name in PRETRAINED_MODELS[task] if name not in models]
    if missing:
        raise DemoFolderError(f"no packaged model {', '.join(map(repr, missing))} for the {task} demo in this ratmir "
                              f"(see `ratmir models`); `make demo TASK={task}` trains one from scratch")
    rat, baseline = PRETRAINED_MODELS[task]
    return {"rat": models[rat], DEMO_BASELINE[task]: models[baseline]}


def _prepare_settings(config: DemoConfig, entry: Any) -> dict[str, Any]:
    """The PrepareConfig fields that make the test split the model was scored on (recorded at packaging);
    a demo seed or CT noise other than the training dataset's is refused: its split would differ."""
    recorded = dict(entry.summary.get("dataset") or {})
    wanted = {"seed": config.seed, "ct_noise_hu": _ct_noise(config)}
    for key, value in wanted.items():
        if key in recorded and recorded[key] != value:
            raise DemoFolderError(f"the packaged model {entry.name!r} was trained on a dataset prepared with {key} "
                                  f"{recorded[key]!r}, not {value!r}: another {key} would make another test split "
                                  "(with images it trained on); leave it at the default")
    fields = {"test_fraction": "test_fraction", "val_fraction": "val_fraction", "tile_size": "tile_size",
              "regions_window": "regions_window"}
    settings = {"seed": config.seed, "ct_noise_hu": _ct_noise(config)}
    settings.update({field: recorded[key] for key, field in fields.items() if recorded.get(key) is not None})
    return settings


def pretrained_settings(config: DemoConfig) -> dict[str, Any]:
    """What decides a pretrained demo's results (``demo.json``): the models' names and SHA-256 and the data."""
    from . import __version__

    entries = _entries(config.task)
    return {"format": DEMO_FORMAT, "ratmir_version": __version__, "task": config.task, "pretrained": True,
            "iterations": int(entries["rat"].summary.get("iterations", 0)), "limit": config.limit,
            "seed": config.seed, "ct_noise_hu": _ct_noise(config),
            "models": {role: {"name": e.name, "architecture": e.architecture, "sha256": e.sha256,
                              "iterations": e.summary.get("iterations"), "regions_backend": e.regions_backend}
                       for role, e in entries.items()}}


def run_pretrained_demo(config: DemoConfig) -> Path:
    """Run one task's pretrained demo into ``config.folder``; returns the path of its ``report.md``."""
    from .data import read_manifest
    from .data.layout import DATASET_FILE
    from .data.prepare import PrepareConfig, prepare_dataset
    from .engine.evaluate import evaluate
    from .models.hub import packaged_model_path

    folder = config.folder
    settings = pretrained_settings(config)
    entries = _entries(config.task)
    prepare_settings = _prepare_settings(config, entries["rat"])  # refuses a seed that would change the split
    if not check_demo_folder(config):
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / DEMO_FILE, json.dumps(settings, indent=1) + "\n")
    clock = StageClock(folder / TIMINGS_FILE)
    with clock.stage("check the weights"):  # each file against its recorded SHA-256
        weights = {role: packaged_model_path(entry.name) for role, entry in entries.items()}

    data = folder / "data"
    with clock.stage("prepare the test split") as flags:
        flags["done_before"] = (data / DATASET_FILE).is_file()
        if not flags["done_before"]:
            prepare_dataset(PrepareConfig(task=config.task, out=data, limit=config.limit, splits=("test",),
                                          progress=config.progress,
                                          regions_backend=entries["rat"].regions_backend or "auto",
                                          **prepare_settings))
        _check_dataset(config, data)
        manifest = read_manifest(data)

    summaries = {}
    for role, path in weights.items():
        with clock.stage(f"evaluate {entries[role].name}"):
            summaries[role] = evaluate(path, data=data, out=folder / "evaluation" / role, figures=0, label=role,
                                       progress=config.progress, overwrite=True)
    with clock.stage("restore"):
        restored = restore_held_out(config, data=data, manifest=manifest, out=folder, weights=weights["rat"],
                                    label_maps=True)
    with clock.stage("figures"):
        figures = comparison_figures(data=data, weights=weights, folder=folder / "figures", task=config.task)
    return finish_demo(config, settings=settings, manifest=manifest, data=data, summaries=list(summaries.values()),
                       clock=clock, figures=figures, restored=restored)
