"""``ratmir demo`` (``make demo``): the main job end to end, on real images, on a CPU.

1. ``prepare`` the embedded dataset of the task (real images shipped in packages);
2. train a small RAT and one baseline for a CPU-friendly budget with the same engine;
3. evaluate both and the LQ input under the task's metric conventions;
4. restore held-out images with ``restore`` (for CT: the quarter-dose test slices written as
   DICOM files derived from their real sources, restored into a DICOM series);
5. write ``OUT/<task>/report.md`` with the table (mean ± std), split sizes, time and figures
   (LQ / RAT / baseline / HQ, with the region boundaries), saying plainly when the baseline
   wins, and refresh ``OUT/index.md``, one page over every task's finished demo in OUT.

Each task has its own folder ``OUT/<task>`` (``demo.json`` records the settings and the ratmir
version that made it), so the tasks run one after another into one OUT without touching each
other. Every stage resumes or reuses what a previous run with the same settings left there, so
an interrupted demo continues where it stopped; a folder made with other settings or by another
version is refused with :class:`DemoFolderError` (one line), never silently reused.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._files import write_text_atomic
from .data.ct_noise import DEFAULT_FULL_DOSE_NOISE_HU
from .engine.config import (ConfigError, DataConfig, ExperimentConfig, LossConfig, ModelConfig, OptimConfig,
                            TrainConfig)

# Small models and budgets that fit in ~20 minutes of a 2-core CPU, per task.
DEMO_MODELS = {
    # no activation checkpointing: at patch 96, batch 4 the small RAT needs little memory, and
    # recomputing costs ~1.25x the time here
    "rat": {"width": 16, "middle_layers": 6, "layers_per_group": 3, "identity_init": True, "checkpointing": "none"},
    "redcnn": {"features": 48},
    "dncnn": {"features": 32, "depth": 10},
}
DEMO_BASELINE = {"ct": "redcnn", "pet": "dncnn", "pathology": "dncnn"}
DEMO_FORMAT = 1  # layout of a task's demo folder; a folder of another layout is refused
DEMO_FILE = "demo.json"  # settings + version that made a task's folder
RESULT_FILE = "result.json"  # a finished demo's numbers, read by index.md
INDEX_FILE = "index.md"
TIMINGS_FILE = "timings.json"  # seconds per stage, summed over the runs that did its work
ALL_TASKS = "all"


_VOLUME_SLICE = re.compile(r"(.+\.inv3) slice (\d+)")  # a sample's origin inside an InVesalius project


class DemoFolderError(ConfigError):
    """A demo folder this demo must not resume: made with other settings, by another version,
    or not a demo folder at all. The message is one line naming the folder and the change."""


@dataclass(frozen=True)
class DemoConfig:
    task: str = "ct"
    out: Path = Path("demo")  # parent folder: the task's demo lives in out/<task>
    iterations: int = 1500
    patch_size: int = 96
    batch_size: int = 4
    lr: float = 1e-3
    # the short-budget recipe chosen by benchmarks/recipes.py (docs/decisions.md, "Short-budget recipe"):
    # Adam betas (0.9, 0.999) and, for RAT, a linear warm-up capped at a quarter of a (test-sized) run
    betas: tuple[float, float] = (0.9, 0.999)
    warmup: int = 60
    limit: int | None = None  # images per split (None: the whole embedded dataset)
    # CT: prepare's default, thin-slice (AAPM-Mayo-like) noise, 12 HU at full dose / ~24 HU at
    # quarter dose; the embedded clinical slices are smooth (2-6 HU), too clean to show denoising.
    ct_noise_hu: float | None = DEFAULT_FULL_DOSE_NOISE_HU
    # medsam, not prepare's default (felzenszwalb): the packaged models and the demo results in
    # README were made on LiteMedSAM maps (~6 s per slice here, felzenszwalb 0.3 s)
    regions_backend: str = "medsam"
    seed: int = 0
    progress: bool = True
    models: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEMO_MODELS))
    # the packaged models instead of training (ratmir.demo_pretrained): only the test split is prepared
    pretrained: bool = False

    @property
    def folder(self) -> Path:
        """This task's demo folder, ``out/<task>``."""
        return Path(self.out) / self.task


def demo_settings(config: DemoConfig) -> dict[str, Any]:
    """What decides a task's demo results (recorded in ``demo.json``; a change is refused)."""
    from . import __version__

    if config.pretrained:
        from .demo_pretrained import pretrained_settings

        return pretrained_settings(config)
    baseline = DEMO_BASELINE[config.task]
    return {"format": DEMO_FORMAT, "ratmir_version": __version__, "task": config.task,
            "iterations": config.iterations, "patch_size": config.patch_size, "batch_size": config.batch_size,
            "lr": config.lr, "betas": list(config.betas), "warmup": demo_warmup(config), "limit": config.limit,
            "seed": config.seed,
            "ct_noise_hu": _ct_noise(config), "regions_backend": config.regions_backend,
            "models": {name: dict(config.models[name]) for name in ("rat", baseline)}}


def demo_warmup(config: DemoConfig) -> int:
    """The warm-up iterations the demo's RAT trains with: ``config.warmup``, at most a quarter of the run."""
    return min(config.warmup, config.iterations // 4)


def _ct_noise(config: DemoConfig) -> float | None:
    return config.ct_noise_hu if config.task == "ct" else None


def _changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in dict.fromkeys([*new, *old])
                     if old.get(k) != new.get(k))


def check_demo_folder(config: DemoConfig) -> bool:
    """Raise :class:`DemoFolderError` if ``config.folder`` cannot be resumed with ``config``;
    returns whether it already holds this demo (``False``: it does not exist or is empty)."""
    folder = config.folder
    stamp = folder / DEMO_FILE
    if stamp.is_file():
        try:
            old = json.loads(stamp.read_text())
        except (OSError, ValueError) as exc:
            raise DemoFolderError(f"{stamp} is unreadable ({exc}); use another --out or delete {folder}") from None
        changes = _changes(old if isinstance(old, dict) else {}, demo_settings(config))
        if changes:
            raise DemoFolderError(f"{folder} holds a demo made with other settings or another ratmir ({changes}); "
                                  f"rerun with those settings, use another --out, or delete {folder}")
        return True
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DemoFolderError(f"{folder} exists but is not a demo folder of this ratmir (no {DEMO_FILE}); "
                              f"use another --out or delete {folder}")
    return False


def _check_dataset(config: DemoConfig, data: Path) -> None:
    """Refuse a dataset in the demo folder that was prepared with another task, limit, seed or CT noise."""
    from .data.layout import DATASET_FILE

    try:
        manifest = json.loads((data / DATASET_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise DemoFolderError(f"{data / DATASET_FILE} is unreadable ({exc}); delete {config.folder} "
                              "or use another --out") from None
    manifest = manifest if isinstance(manifest, dict) else {}
    expected = {"task": config.task, "limit": config.limit, "seed": config.seed, "ct_noise_hu": _ct_noise(config)}
    changes = _changes({k: manifest.get(k) for k in expected}, expected)
    if changes:
        raise DemoFolderError(f"{data} was prepared with other settings ({changes}); delete {config.folder} "
                              "or use another --out")


def _experiment(cfg: DemoConfig, *, data: Path, model: str) -> ExperimentConfig:
    return ExperimentConfig(
        task=cfg.task, name=model,
        model=ModelConfig(name=model, options=dict(cfg.models[model])),
        data=DataConfig(root=str(data), patch_size=cfg.patch_size, batch_size=cfg.batch_size, val_max_images=4),
        loss=LossConfig(name="focal_region", gamma=1e-3, delta=1.0),
        # the warm-up is RAT's (zero output conv); the CNN baselines start from a random output
        # and train without it, as they were measured (benchmarks/recipes.py: DnCNN is slower with it)
        optim=OptimConfig(lr=cfg.lr, lr_min=1e-6, betas=tuple(cfg.betas),
                          warmup=demo_warmup(cfg) if model == "rat" else 0),
        train=TrainConfig(iterations=cfg.iterations, seed=cfg.seed, log_every=50, val_every=cfg.iterations,
                          checkpoint_every=100),
    )


def _check_task(task: str) -> None:
    from .tasks import TASK_NAMES

    if task not in TASK_NAMES:
        raise ConfigError(f"task must be one of {TASK_NAMES} or {ALL_TASKS!r}, got {task!r}")


def earlier_layout(out: str | Path) -> list[Path]:
    """What a ratmir before per-task folders left directly in ``out`` (``report.md``, ``runs/``,
    ``data-<task>/``...): left as it is (the new demo does not read it), named so it can be removed."""
    out = Path(out)
    names = ("report.md", "runs", "evaluation", "figures", "held-out-lq", "restored")
    return sorted(p for p in out.glob("*") if p.name in names or p.name.startswith("data-"))


def run_demos(config: DemoConfig, *, tasks: Sequence[str]) -> Path:
    """Run the demo of each task in ``tasks`` into ``config.out/<task>`` one after another;
    returns the path of ``config.out/index.md``. Every task's folder is checked before any
    work, so a folder that would be refused stops the run at once."""
    for task in tasks:
        _check_task(task)
        check_demo_folder(replace(config, task=task))
    for task in tasks:
        run_demo(replace(config, task=task))
    return Path(config.out) / INDEX_FILE


def run_demo(config: DemoConfig) -> Path:
    """Run one task's demo into ``config.out/<task>`` and refresh ``config.out/index.md``;
    returns the path of the task's ``report.md``."""
    from .data import read_manifest
    from .data.layout import DATASET_FILE
    from .data.prepare import PrepareConfig, prepare_dataset
    from .engine import train
    from .engine.evaluate import evaluate

    _check_task(config.task)
    if config.pretrained:
        from .demo_pretrained import run_pretrained_demo

        return run_pretrained_demo(config)
    folder = config.folder
    if not check_demo_folder(config):
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / DEMO_FILE, json.dumps(demo_settings(config), indent=1) + "\n")
    clock = StageClock(folder / TIMINGS_FILE)

    data = folder / "data"
    with clock.stage("prepare") as flags:
        flags["done_before"] = (data / DATASET_FILE).is_file()
        if not flags["done_before"]:
            prepare_dataset(PrepareConfig(task=config.task, out=data, limit=config.limit, seed=config.seed,
                                          ct_noise_hu=_ct_noise(config), regions_backend=config.regions_backend,
                                          progress=config.progress))
        _check_dataset(config, data)
        manifest = read_manifest(data)

    runs = {}
    baseline = DEMO_BASELINE[config.task]
    for model in ("rat", baseline):
        with clock.stage(f"train {model}") as flags:
            result = train(_experiment(config, data=data, model=model), out=folder / "runs" / model,
                           progress=config.progress)
            flags["done_before"] = result.resumed_from >= config.iterations
            flags["resumed"] = result.resumed_from > 0
        runs[model] = result.run

    summaries = {}
    for model, run in runs.items():
        with clock.stage(f"evaluate {model}"):
            summaries[model] = evaluate(run, data=data, out=folder / "evaluation" / model, figures=0,
                                        progress=config.progress, overwrite=True)  # stamped folder: always rerun
    with clock.stage("restore"):
        restored = restore_held_out(config, data=data, manifest=manifest, out=folder,
                                    weights=runs["rat"] / "model.safetensors")
    with clock.stage("figures"):
        figures = comparison_figures(data=data, weights={name: run / "model.safetensors" for name, run in runs.items()},
                                     folder=folder / "figures", task=config.task)
    return finish_demo(config, settings=demo_settings(config), manifest=manifest, data=data,
                       summaries=list(summaries.values()), clock=clock, figures=figures, restored=restored)


def finish_demo(config: DemoConfig, *, settings: dict[str, Any], manifest: dict[str, Any], data: Path,
                summaries: list[Path], clock: StageClock, figures: list[Path], restored: list[Path]) -> Path:
    """Write a task's ``result.json`` and ``report.md`` and refresh ``index.md``; returns the report's path."""
    from .demo_report import render_report, task_result
    from .engine.report import collect

    folder = config.folder
    record = task_result(settings=settings, manifest=manifest, data=data.relative_to(folder),
                         rows=collect(list(summaries)), baseline=DEMO_BASELINE[config.task], timings=clock.rows(),
                         figures=[p.relative_to(folder) for p in figures],
                         restored=[p.relative_to(folder) if p.is_relative_to(folder) else p for p in restored])
    write_text_atomic(folder / RESULT_FILE, json.dumps(record, indent=1) + "\n")
    report = write_text_atomic(folder / "report.md", render_report(record))
    write_index(config.out)
    return report


class StageClock:
    """Seconds each stage took to make what the folder holds, kept in ``timings.json`` after
    every stage (and when one is interrupted): a training that resumes adds its time to the
    earlier runs' time, a stage with nothing left to do (a reused dataset, a finished training)
    keeps its earlier time, and the stages that always rerun count their latest run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = {}
        self.saved: dict[str, Any] = saved if isinstance(saved, dict) else {}
        self.now: dict[str, dict[str, Any]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, bool]]:
        """Time the block; it may set ``done_before`` (nothing to do) or ``resumed`` in the dict."""
        flags = {"done_before": False, "resumed": False}
        start = time.perf_counter()
        try:
            yield flags
        except BaseException:
            self._save(name, {"seconds": time.perf_counter() - start, "note": "interrupted"})
            raise
        seconds = time.perf_counter() - start
        old = self.saved.get(name)
        old_seconds = float(old["seconds"]) if isinstance(old, dict) and "seconds" in old else None
        if flags["done_before"] and old_seconds is not None:
            entry = {"seconds": old_seconds, "note": "done by an earlier run"}
        elif flags["resumed"] and old_seconds is not None:
            entry = {"seconds": old_seconds + seconds, "note": "resumed; earlier runs included"}
        elif flags["resumed"] or flags["done_before"]:
            entry = {"seconds": seconds, "note": "resumed; earlier runs not timed"}
        else:
            entry = {"seconds": seconds, "note": ""}
        self.now[name] = entry
        self._save(name, entry)

    def _save(self, name: str, entry: dict[str, Any]) -> None:
        self.saved[name] = entry
        write_text_atomic(self.path, json.dumps(self.saved, indent=1) + "\n")

    def rows(self) -> list[tuple[str, float, str]]:
        return [(name, e["seconds"], e["note"]) for name, e in self.now.items()]


def write_index(out: str | Path) -> Path:
    """Write ``out/index.md`` from the finished task demos found in ``out`` (``result.json``)."""
    from .demo_report import render_index
    from .tasks import TASK_NAMES

    out = Path(out)
    results: dict[str, dict[str, Any] | None] = {}
    for task in TASK_NAMES:
        try:
            result = json.loads((out / task / RESULT_FILE).read_text())
        except (OSError, ValueError):
            result = None
        ok = isinstance(result, dict) and result.get("settings", {}).get("format") == DEMO_FORMAT
        results[task] = result if ok else None
    return write_text_atomic(out / INDEX_FILE, render_index(results))


def restore_held_out(config: DemoConfig, *, data: Path, manifest: dict[str, Any], out: Path,
                     weights: Path, label_maps: bool = False) -> list[Path]:
    """Restore the test split's LQ images with ``ratmir restore``; for CT, the LQ slices are first
    written as DICOM (a series in, a series out): derived from their DICOM file, or, for slices of
    an InVesalius project (no DICOM header), as a new series per volume. CT computes its region maps on the DICOM slices unless ``label_maps`` (then the
    dataset's maps of the same LQ pixels are read, as for the other tasks)."""
    from .data.layout import pair_paths, read_image
    from .io import read_dicom, write_dicom_like
    from .restore import RestoreConfig, restore_files

    per_image = manifest.get("degradation", {}).get("per_image", {})
    lq_dir = out / "held-out-lq"
    volumes: dict[str, Any] = {}
    for instance, name in enumerate(manifest["splits"]["test"], start=1):
        origin = str(per_image.get(name, {}).get("origin", ""))
        lq = pair_paths(data, "test", name).lq
        volume_slice = _VOLUME_SLICE.fullmatch(origin)
        if config.task == "ct" and origin.endswith(".dcm") and Path(origin).is_file():
            source = read_dicom(origin)
            write_dicom_like(source.dataset, read_image(lq), lq_dir / f"{name}.dcm",
                             series_uid=None, series_description="simulated quarter dose (ratmir demo)")
        elif config.task == "ct" and volume_slice and Path(volume_slice[1]).is_file():
            # a slice of an InVesalius project has no DICOM header: a new series, one per volume
            from .io import NewSeries, write_new_ct_slice
            from .io.inv3 import read_inv3

            path, z = volume_slice[1], int(volume_slice[2])
            if path not in volumes:
                sx, sy, sz = read_inv3(path).spacing_mm
                volumes[path] = NewSeries(key=f"{Path(path).name} {manifest.get('seed')}",
                                          patient_id=str(per_image[name].get("subject", Path(path).stem)),
                                          series_description="simulated quarter dose (ratmir demo)",
                                          pixel_spacing_mm=(sy, sx), slice_thickness_mm=sz)
            series = volumes[path]
            write_new_ct_slice(read_image(lq), lq_dir / f"{name}.dcm", series=series, instance=instance,
                               z_mm=z * float(series.slice_thickness_mm or 1.0),
                               derivation=f"simulated quarter dose (ratmir) of slice {z} of {Path(path).name}")
        else:
            lq_dir.mkdir(parents=True, exist_ok=True)
            (lq_dir / lq.name).write_bytes(lq.read_bytes())
    report = restore_files(RestoreConfig(inputs=(lq_dir,), model=weights, out=out / "restored",
                                         regions=(data / "test" / "regions") if config.task != "ct" or label_maps
                                         else manifest.get("regions", {}).get("backend", "auto"),
                                         window=manifest.get("regions", {}).get("window", "auto") or "auto",
                                         progress=config.progress, overwrite=True))
    if not report.ok:
        raise RuntimeError("restoring the held-out images failed: " + "; ".join(report.failures))
    return report.written


def comparison_figures(*, data: Path, weights: dict[str, Path], folder: Path, task: str, count: int = 2) -> list[Path]:
    """LQ | RAT | baseline | HQ with a zoomed inset, error maps and the region boundaries
    (:func:`ratmir.engine.figures.comparison_figure`, as ``evaluate`` and ``study`` draw them)."""
    import torch

    from .data import PairedDataset
    from .engine.figures import comparison_figure
    from .models import load_pretrained
    from .restore import restore_image

    dataset = PairedDataset(data, "test")
    models = {name: load_pretrained(path).eval() for name, path in weights.items()}
    paths = []
    for i in range(min(count, len(dataset))):
        item = dataset[i]
        lq, hq, regions = item["lq"][None], item["hq"][None], item["regions"][None]
        with torch.no_grad():
            outs = {name.upper(): restore_image(m, lq, regions).clamp(0, 1) for name, m in models.items()}
        paths.append(comparison_figure(folder / f"{item['name']}.png", lq=lq, outputs=outs, hq=hq, task=task,
                                       norm=dataset.normalisation, regions=regions, dpi=70))
    return paths
