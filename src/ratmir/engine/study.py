"""``ratmir study``: a grid of experiments x seeds, trained and evaluated by the engine, then a
report with paired statistics (:mod:`ratmir.engine.study_report`).

OUT holds::

    study.json                            the spec's path and fingerprints (a rerun must match, or grow it)
    datasets/<name>/                      datasets the spec prepares or derives (not committed)
    runs/<experiment>/seed<k>/            a RUN folder (``ratmir train``) per unit: weights (not committed)
    units/<experiment>/seed<k>/study_train.json     written when its training finished: every setting
    units/<experiment>/seed<k>/evaluation/<source>/ ``ratmir evaluate`` output per region source
    report/                               report.md, summary.csv, paired.csv, differences.png, figures/

``study.json``, ``units/`` and ``report/`` are small and meant to be committed
(:mod:`ratmir.engine.study_layout`). Rerunning the same command continues: finished units are
skipped (their files are not touched), also on a new machine that has only the committed
files; an interrupted training resumes from its last checkpoint, a missing evaluation is
redone. An unfinished unit whose weights are not on this machine is trained again and all its
evaluations redone (so they score the same weights). A study grows: a spec with more
experiments, datasets or seeds (new names) reruns into the same folder and trains only the new
units (:func:`_check_study_folder`). A unit that raises is listed in
``failed`` (traceback in RUN/study_error.txt) and the others go on. Units can be split over
processes: ``shard=(i, n)`` takes every n-th unit; ``jobs=N`` runs N local processes that take
units from one queue; under ``torchrun`` each rank takes a shard and trains alone on its own
device. The report is written by whichever process finds every unit finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .._files import atomic_path
from .config import ConfigError, load_config, to_dict
from .study_layout import (  # noqa: F401 - public here too
    TRAIN_DONE, evaluation_dir, run_dir, train_record, unit_dir, unit_name)
from .study_records import setting_differences
from .study_report import write_study_report
from .study_spec import DatasetSpec, ExperimentSpec, StudySpec, load_study


@dataclass
class StudyResult:
    out: Path
    ran: list[str] = field(default_factory=list)  # units trained or evaluated by this call
    skipped: list[str] = field(default_factory=list)  # units already finished
    missing: list[str] = field(default_factory=list)  # units not finished (other shards, or failed)
    failed: list[str] = field(default_factory=list)  # "unit: error" of units that raised in this call
    # finished units whose record differs from what the spec trains now: unit -> "key: recorded R, spec S"
    differs: dict[str, list[str]] = field(default_factory=dict)
    report: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` between processes (POSIX ``flock``; no-op elsewhere)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _single_process() -> Iterator[None]:
    """Hide torchrun's world from the trainer: each study rank trains its units alone (on its
    LOCAL_RANK's device), without a process group (``init_distributed`` makes one under
    torchrun even for one process, recognised by MASTER_ADDR, which is hidden too)."""
    saved = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR")}
    os.environ.update(RANK="0", WORLD_SIZE="1")
    os.environ.pop("MASTER_ADDR", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


# -- datasets -------------------------------------------------------------------------------------
def ensure_datasets(spec: StudySpec, *, names: set[str] | None = None, progress: bool = True) -> None:
    """Prepare or derive the datasets ``names`` (default: every dataset of the spec), with the ones
    they are derived from, that do not exist yet (once, under a lock)."""
    from ..data.layout import DATASET_FILE

    wanted = set(spec.datasets) if names is None else set(names)
    for d in reversed(spec.datasets.values()):  # a source is listed before the datasets made from it
        if d.name in wanted and d.source is not None:
            wanted.add(d.source)
    for d in (d for d in spec.datasets.values() if d.name in wanted):
        if (d.root / DATASET_FILE).is_file():
            continue
        with _locked(d.root.parent / f".{d.name}.lock"):
            if (d.root / DATASET_FILE).is_file():  # made by another process meanwhile
                continue
            if d.prepare is not None:
                _prepare(d, spec=spec, progress=progress)
            elif d.source is not None:
                derive_dataset(spec.datasets[d.source].root, out=d.root, backend=d.regions["backend"],
                               options=d.regions.get("options") or {}, window=d.regions.get("window"),
                               progress=progress)
            else:
                raise ConfigError(f"dataset {d.name}: no prepared dataset at {d.root}")


def _prepare(d: DatasetSpec, *, spec: StudySpec, progress: bool) -> None:
    from ..data.prepare import PrepareConfig, prepare_dataset

    options = dict(d.prepare)
    if "sources" in options:
        options["sources"] = tuple((spec.path.parent / str(p)).resolve() for p in options["sources"])
    if d.root.exists() and any(d.root.iterdir()):
        raise ConfigError(f"dataset {d.name}: {d.root} exists but holds no dataset.json; remove it or set 'root'")
    prepare_dataset(PrepareConfig(out=d.root, progress=progress, **options))


def derive_dataset(source: str | os.PathLike, *, out: str | os.PathLike, backend: str, options: dict | None = None,
                   window: str | None = None, progress: bool = True) -> Path:
    """A dataset with the images of ``source`` (linked, not copied) and region maps made by
    ``backend``: the way to train the same model on other regions. Resumable: label maps
    already made are kept, ``dataset.json`` is written last."""
    from ..data.layout import DATASET_FILE, read_manifest
    from ..data.prepare import TASK_WINDOWS, make_regions, task_region_options

    source, out = Path(source).resolve(), Path(out)
    manifest = read_manifest(source)
    task = manifest["task"]
    window = window or (manifest.get("regions") or {}).get("window") or TASK_WINDOWS[task]
    options = dict(options or {}) or task_region_options(task, backend)
    for split in manifest["splits"]:
        for kind in ("lq", "hq"):
            link = out / split / kind
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source / split / kind, target_is_directory=True)
    record = make_regions(out, backend=backend, window=window, options=options, progress=progress)
    derived = {**manifest, "regions": record, "derived_from": str(source)}
    with atomic_path(out / DATASET_FILE) as tmp:
        tmp.write_text(json.dumps(derived, indent=1))
    return out


# -- units ----------------------------------------------------------------------------------------
def unit_finished(spec: StudySpec, out: Path, experiment: ExperimentSpec, seed: int) -> bool:
    """Whether the unit's committed files (``units/``) are complete; its weights need not be here."""
    return train_record(out, experiment.name, seed).is_file() and all(
        (evaluation_dir(out, experiment.name, seed, s.name) / "summary.json").is_file()
        for s in experiment.region_sources)


def run_unit(spec: StudySpec, out: Path, experiment: ExperimentSpec, seed: int, *, device: str = "cpu",
             progress: bool = True) -> bool:
    """Train (or resume) and evaluate one (experiment, seed); returns False if it was finished."""
    from .evaluate import evaluate
    from .trainer import train

    if unit_finished(spec, out, experiment, seed):
        return False
    run = run_dir(out, experiment.name, seed)
    config = load_config(experiment.config, overrides=spec.overrides(experiment, seed))
    done = train_record(out, experiment.name, seed)
    trained = done.is_file() and json.loads(done.read_text()).get("config") == to_dict(config)
    if not (trained and (run / "model.safetensors").is_file()):  # weights gone (a new machine): train again
        # evaluations already in units/ scored other weights (another machine's, another config's):
        # every source is scored again from the weights trained now, and the old record goes first,
        # so an interrupted training never leaves a record next to evaluations it did not make
        shutil.rmtree(unit_dir(out, experiment.name, seed) / "evaluation", ignore_errors=True)
        done.unlink(missing_ok=True)
        with _single_process():
            result = train(config, out=run, progress=progress)
        from ..models import load_pretrained
        from ..models.layer_scales import layer_scale_sizes

        scales = layer_scale_sizes(load_pretrained(run / "model.safetensors"))  # does it use R-MSA (λ_ra)?
        done.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(done) as tmp:
            tmp.write_text(json.dumps({"seconds": result.seconds, "iterations": result.iterations,
                                       "resumed_from": result.resumed_from, "best": result.best,
                                       "layer_scales": scales, "config": to_dict(config)}, indent=1))
    for source in experiment.region_sources:
        target = evaluation_dir(out, experiment.name, seed, source.name)
        if (target / "summary.json").is_file():
            continue
        start = time.perf_counter()
        # no summary.json: what the folder holds is an evaluation of this unit that stopped before its
        # end (summary.json is written last), so it is replaced rather than refused
        path = evaluate(run, data=config.data.root, split=spec.split, out=target, tile=spec.tile,
                        overlap=spec.overlap, figures=0, device=device, label=experiment.name, progress=progress,
                        regions=source, max_images=spec.max_images, overwrite=True)
        summary = json.loads(path.read_text())
        summary["seconds"] = time.perf_counter() - start
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    return True


def _check_study_folder(spec: StudySpec, out: Path) -> None:
    """Refuse a folder whose study.json records another spec; record (or extend) it otherwise.

    A study grows: experiments, datasets and seeds with new names join (their units train, the
    finished ones are skipped); a shared setting (``common``, evaluation) or an experiment or
    dataset of a recorded name whose definition changed is refused, naming what changed. A record
    from before the parts were kept (only ``fingerprint``) is upgraded when the whole spec matches.
    """
    record = out / "study.json"
    parts, whole = spec.part_fingerprints(out=out), spec.fingerprint(out=out)
    with _locked(out / ".study.lock"):
        saved = old = json.loads(record.read_text()) if record.is_file() else None
        if old is not None and "shared" not in old:
            if old.get("fingerprint") != whole:
                raise ConfigError(f"{out} holds a study made from a different spec ({old.get('spec')}); "
                                  "use another --out, or delete it to start over")
            old = None  # the same spec: record its parts
        if old is not None:
            changed = [] if old["shared"] == parts["shared"] else ["the common settings or the evaluation"]
            for kind in ("datasets", "experiments"):
                changed += [f"{kind[:-1]} {name!r}" for name, fp in parts[kind].items()
                            if old[kind].get(name, fp) != fp]
            if changed:
                raise ConfigError(f"{out} holds a study made from a different spec ({old.get('spec')}): "
                                  f"{', '.join(changed)} changed since its units were made. A study may only "
                                  "grow (new experiment, dataset or seed names); use another --out, a new "
                                  "name for the changed part, or delete the folder to start over")
            parts = {**parts, "datasets": {**old["datasets"], **parts["datasets"]},
                     "experiments": {**old["experiments"], **parts["experiments"]},
                     "seeds": sorted(set(old["seeds"]) | set(parts["seeds"]))}
        mine = {"spec": os.path.relpath(spec.path, out), "fingerprint": whole, **parts}
        if mine != saved:
            with atomic_path(record) as tmp:
                tmp.write_text(json.dumps(mine, indent=1))


def run_study(spec_path: str | os.PathLike, *, out: str | os.PathLike, shard: tuple[int, int] | None = None,
              jobs: int = 1, device: str = "cpu", report: bool = True, progress: bool = True) -> StudyResult:
    """Run (or continue) the study of ``spec_path`` in ``out``; see the module docstring.

    ``shard``: (index, count) of the units this process takes; default from ``RANK``/``WORLD_SIZE``
    (torchrun) or all units. ``jobs``: local processes, each with its share of the CPU threads,
    each taking the shard's next unit when it is free. ``report``: write the report when every
    unit is finished.
    """
    from ..regions.batch import shard_from_env

    out = Path(out).resolve()
    spec = load_study(spec_path, out=out)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    index, count = shard if shard is not None else shard_from_env()
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    out.mkdir(parents=True, exist_ok=True)
    _check_study_folder(spec, out)
    units = spec.units()
    mine = range(index, len(units), count)  # this shard: every count-th unit
    todo = [units[i][0] for i in mine if not unit_finished(spec, out, *units[i])]
    # only what the unfinished units train on: a clone with every unit committed needs none, and a
    # study grown by one arm does not remake the other arms' derived datasets (medsam: minutes)
    ensure_datasets(spec, names={e.dataset for e in todo if e.dataset is not None}, progress=progress)
    result = StudyResult(out=out)
    if jobs > 1:
        for done in _run_jobs(spec, out, positions=list(mine), jobs=jobs, device=device):
            result.ran += done.ran
            result.skipped += done.skipped
            result.failed += done.failed
    else:
        for i in mine:
            _run_recorded(spec, out, *units[i], device=device, progress=progress, result=result)
    result.missing = [unit_name(e.name, s) for e, s in spec.units() if not unit_finished(spec, out, e, s)]
    # finished units trained otherwise than the spec asks (copied from another study, or before a default changed)
    for e, s in (units[i] for i in mine):
        if unit_name(e.name, s) not in result.missing and (diff := setting_differences(spec, out, e, s)):
            result.differs[unit_name(e.name, s)] = diff
    if report and not result.missing:
        with _locked(out / ".study.lock"):
            result.report = write_study_report(spec, out=out, device=device)
    return result


def _write_error(run: Path) -> None:
    """The traceback of the exception being handled, into RUN/study_error.txt."""
    import traceback

    run.mkdir(parents=True, exist_ok=True)
    (run / "study_error.txt").write_text(traceback.format_exc())


def _run_recorded(spec: StudySpec, out: Path, experiment: ExperimentSpec, seed: int, *, device: str,
                  progress: bool, result: StudyResult) -> None:
    """:func:`run_unit`, its outcome added to ``result``; a failure is recorded, not raised."""
    name = unit_name(experiment.name, seed)
    try:
        ran = run_unit(spec, out, experiment, seed, device=device, progress=progress)
    except Exception as exc:  # noqa: BLE001 - one failed unit must not stop an unattended study
        result.failed.append(f"{name}: {type(exc).__name__}: {exc}")
        _write_error(run_dir(out, experiment.name, seed))
        return
    (run_dir(out, experiment.name, seed) / "study_error.txt").unlink(missing_ok=True)
    (result.ran if ran else result.skipped).append(name)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _unit_job(spec_path: str, out: str, position: int, device: str) -> StudyResult:
    """One unit (``spec.units()[position]``) in a worker process."""
    spec = load_study(spec_path, out=out)
    experiment, seed = spec.units()[position]
    result = StudyResult(out=Path(out))
    _run_recorded(spec, Path(out), experiment, seed, device=device, progress=False, result=result)
    return result


def _run_jobs(spec: StudySpec, out: Path, *, positions: list[int], jobs: int,
              device: str) -> list[StudyResult]:
    """The units at ``positions`` of ``spec.units()`` (this shard's) on ``jobs`` worker processes,
    each taking the next unit when it is free (not a fixed share: a fixed split left one core idle
    for the last ~25 minutes of the PET study)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_set_threads,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(_unit_job, str(spec.path), str(out), i, device) for i in positions]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]
    return [f.result() for f in futures]
