"""``ratmir prepare {ct,pet,pathology}``: build a paired dataset in the layout of
:mod:`ratmir.data.layout`.

1. Find the samples: the embedded real-image sources (:mod:`.sources`), or the user's data
   (:mod:`.user_sources`); every source looked for is recorded.
   CT: slices with less than ``ct_min_scored_fraction`` of their area inside the scored window
   [-160, 240] HU are left out (counted, with the rule, in ``dataset.json`` ``left_out``).
2. Split them so test never shares a subject with train or val (:mod:`.splits`); val is carved
   from the training subjects; ``limit`` keeps at most that many images per split, evenly
   spread, for quick runs.
3. Make each pair: acquired pairs are written as they are; otherwise the task's seeded
   degradation (:func:`ratmir.tasks.get_task`) makes the LQ image (CT: the full-dose photon
   count calibrated per subject to an emulated 12 HU full-dose noise, or to the slice's own
   noise, :mod:`.ct_noise`). Images are float32 TIFFs in physical units.
4. Partition the LQ images with the region tool (:func:`ratmir.regions.run_regions`; default
   backend ``auto``: SAM when a checkpoint is configured, else felzenszwalb) through a recorded
   per-task intensity window.
5. Write ``dataset.json`` and move the finished folder into place (:mod:`.staging`).
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._checks import check_choice, check_number, check_positive_int
from ..tasks import CTDegradation, PathologyDegradation, PETAcquisition, TaskSpec, get_task
from .ct_noise import DEFAULT_FULL_DOSE_NOISE_HU, MIN_SCORED_FRACTION, SCORED_WINDOW_HU, scored_fraction
from .layout import DATASET_FILE, pair_paths, read_manifest, write_image
from .samples import RealPair, Sample, SourceSet
from .splits import SPLITS, assign_splits, evenly_spaced
from .staging import check_output_free, staged_output

DATASET_FORMAT = "ratmir-paired-dataset/1"
#: Intensity window of the region backend per task (LQ images are in physical units).
TASK_WINDOWS = {"ct": "ct:40,400", "pet": "range:0,20", "pathology": "range:0,255"}
#: felzenszwalb's default minimum region (256 px) suits 512^2 CT; PET slices (128^2) and
#: pathology tiles (128^2) are smaller, so their regions may be smaller too.
TASK_FELZENSZWALB_OPTIONS = {"ct": {}, "pet": {"min_size": 32}, "pathology": {"min_size": 64}}


def task_region_options(task: str, backend: str) -> dict[str, Any]:
    """The backend options used for ``task`` when none are given: felzenszwalb's per-task
    minimum region (:data:`TASK_FELZENSZWALB_OPTIONS`), the backend's defaults otherwise."""
    return dict(TASK_FELZENSZWALB_OPTIONS.get(task, {})) if backend == "felzenszwalb" else {}


@dataclass(frozen=True)
class PrepareConfig:
    """Everything ``ratmir prepare`` needs (the CLI builds one; :func:`prepare_dataset` takes it).

    ``sources`` empty: the embedded dataset; otherwise the user's files/folders (see
    :mod:`ratmir.data.user_sources`). ``limit``: at most this many images per split.
    ``regions_window``: None for the task's default (:data:`TASK_WINDOWS`).
    ``val_fraction``: share of each training subject's positions (or of the single-image
    training subjects) carved out as the validation split (0: no validation split).
    ``ct_noise_hu``: CT, the emulated full-dose noise std in HU; None: each slice's own noise.
    ``ct_min_scored_fraction``: CT, leave out slices with less of their area in [-160, 240] HU.
    """

    task: str
    out: Path
    sources: tuple[Path, ...] = ()
    limit: int | None = None
    test_fraction: float = 0.25
    val_fraction: float = 0.2
    seed: int = 0
    tile_size: int = 128
    regions_backend: str = "auto"
    regions_options: Mapping[str, Any] = field(default_factory=dict)
    regions_window: str | None = None
    ct_noise_hu: float | None = DEFAULT_FULL_DOSE_NOISE_HU  # CT: emulated full-dose noise (None: own)
    ct_min_scored_fraction: float = MIN_SCORED_FRACTION
    # make only these splits' images (the split of every image is still decided over all of them, and
    # CT noise is calibrated as for the whole dataset, so each image made is the one a full prepare makes)
    splits: tuple[str, ...] = SPLITS
    force: bool = False
    progress: bool = True


@dataclass(frozen=True)
class PrepareReport:
    out: Path
    counts: dict[str, int]
    missing_sources: list[str]
    seconds: float
    skipped_sources: dict[str, str] = field(default_factory=dict)  # id -> why (not installed, unreadable)
    left_out: int = 0  # CT slices left out for too little soft tissue in the scored window


def item_seed(seed: int, name: str) -> int:
    """The degradation seed of sample ``name``: independent of the order and of ``limit``."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


class _PairMaker:
    """Turns samples into (hq, lq, record); holds the CT calibration of each subject."""

    def __init__(self, *, task: TaskSpec, seed: int, references: Mapping[str, Sample],
                 ct_noise_hu: float | None = None) -> None:
        self.task, self.seed, self.references, self.ct_noise_hu = task, seed, references, ct_noise_hu
        self.calibrations: dict[str, tuple[CTDegradation, dict[str, Any]]] = {}

    def __call__(self, sample: Sample) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        source = sample.load()
        if isinstance(source, RealPair):
            hq, lq, record = source.hq, source.lq, {"kind": "acquired pair", **source.record}
        else:
            pair = self.task.degrade(source, config=self._config(sample, source))
            hq, lq, record = pair.hq, pair.lq, {"kind": "simulated", **pair.record}
        if hq.shape != lq.shape:
            raise ValueError(f"{sample.origin}: the LQ image has shape {lq.shape} but the HQ image has {hq.shape}; "
                             "expected equal shapes")
        return hq, lq, record

    def _config(self, sample: Sample, source: Any) -> Any:
        seed = item_seed(self.seed, sample.name)
        if self.task.name == "pet":
            return PETAcquisition(seed=seed)
        if self.task.name == "pathology":
            return PathologyDegradation()
        if sample.subject not in self.calibrations:
            from .ct_noise import calibrate_to_slice

            reference = self.references[sample.subject]
            hu = source if reference is sample else reference.load()
            base = CTDegradation(pixel_size_mm=reference.pixel_size_mm or CTDegradation.pixel_size_mm)
            config, record = calibrate_to_slice(hu, config=base, full_dose_noise_hu=self.ct_noise_hu)
            self.calibrations[sample.subject] = (config, {**record, "reference": reference.name})
        config = self.calibrations[sample.subject][0]
        return dataclasses.replace(config, pixel_size_mm=sample.pixel_size_mm or config.pixel_size_mm, seed=seed)


def _calibration_references(samples: list[Sample]) -> dict[str, Sample]:
    """Per subject, the sample at its median position: where the CT noise is calibrated."""
    by_subject: dict[str, list[Sample]] = {}
    for sample in samples:
        by_subject.setdefault(sample.subject, []).append(sample)
    return {k: sorted(v, key=lambda s: s.position)[(len(v) - 1) // 2] for k, v in by_subject.items()}


def _find_sources(config: PrepareConfig) -> SourceSet:
    if config.sources:
        from .user_sources import user_sources

        found = user_sources(config.task, paths=config.sources, tile_size=config.tile_size)
    else:
        from .sources import embedded_sources

        found = embedded_sources(config.task, seed=config.seed, tile_size=config.tile_size)
    if not found.samples:
        where = [str(p) for p in config.sources] or "the embedded sources"
        raise ValueError(f"no {config.task} images found in {where}; missing sources: {found.missing}")
    names = [s.name for s in found.samples]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two inputs give the same sample name(s) {duplicates[:5]}; rename one of them")
    return found


def _check_config(config: PrepareConfig) -> None:
    if not isinstance(config, PrepareConfig):
        raise TypeError(f"config must be a PrepareConfig, got {type(config).__name__}")
    check_choice("task", config.task, ("ct", "pet", "pathology"))
    if config.limit is not None:
        check_positive_int("limit", config.limit)
    check_number("test_fraction", config.test_fraction, low=0.0, high=0.5, low_inclusive=False)
    check_number("val_fraction", config.val_fraction, low=0.0, high=0.5)
    check_number("ct_min_scored_fraction", config.ct_min_scored_fraction, low=0.0, high=1.0)
    check_positive_int("seed", config.seed, minimum=0)
    check_positive_int("tile_size", config.tile_size, minimum=16)
    if config.ct_noise_hu is not None:
        check_number("ct_noise_hu", config.ct_noise_hu, low=0.0, low_inclusive=False)
    if not config.splits or any(s not in SPLITS for s in config.splits):
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {config.splits!r}")


def make_regions(root: Path, *, backend: str, window: str, options: Mapping[str, Any],
                 progress: bool = True) -> dict[str, Any]:
    """Label maps of every split's LQ images (``root/<split>/regions``, :func:`run_regions`:
    maps already made are kept); returns the dataset's ``regions`` record (backend, settings,
    window). Used by ``prepare`` and by ``study``'s derived datasets."""
    from ..regions import RegionsConfig, run_regions

    settings: dict[str, Any] = {}
    for split in SPLITS:
        if not (root / split / "lq").is_dir():  # an empty split (e.g. no room for validation)
            continue
        report = run_regions(RegionsConfig(
            inputs=(root / split / "lq",), out=root / split / "regions", backend=backend,
            backend_options=dict(options), window=window, progress=progress))
        if report.failures:
            raise ValueError(f"region maps failed for {len(report.failures)} image(s): "
                             + "; ".join(message for _, message in report.failures[:3]))
        first = next((root / split / "regions").glob("*.regions.json"), None)
        if first is not None:
            record = json.loads(first.read_text())
            settings = {"backend": record["backend"], "settings": record["settings"], "window": window}
    return settings


def prepare_dataset(config: PrepareConfig) -> PrepareReport:
    """Build the dataset described by ``config`` in ``config.out`` (see the module docstring).

    Raises ``FileExistsError`` when ``out`` exists (without ``force``), ``ValueError`` naming
    the file for bad inputs; in every failure ``out`` is left as it was.
    """
    _check_config(config)
    start = time.perf_counter()
    task = get_task(config.task)
    out = Path(config.out)
    check_output_free(out, force=config.force)
    from ..regions.batch import resolve_backend_name
    from ..regions.intensity import parse_window

    backend = resolve_backend_name(config.regions_backend, options=config.regions_options)
    window = config.regions_window or TASK_WINDOWS[task.name]
    parse_window(window)
    found = _find_sources(config)
    samples, left_out = _drop_unscorable(found.samples, config=config)
    split = assign_splits(subjects=[s.subject for s in samples], groups=[s.group for s in samples],
                          positions=[s.position for s in samples], gaps=found.gaps,
                          test_fraction=config.test_fraction, seed=config.seed, val_fraction=config.val_fraction)
    chosen = {name: [samples[i] for i in evenly_spaced(split.indices(name), limit=config.limit)] for name in SPLITS}
    maker = _PairMaker(task=task, seed=config.seed, ct_noise_hu=config.ct_noise_hu,
                       references=_calibration_references([s for v in chosen.values() for s in v]))
    chosen = {name: members for name, members in chosen.items() if name in config.splits}
    from tqdm.auto import tqdm

    records: dict[str, Any] = {}
    with staged_output(out, force=config.force) as staging:
        with tqdm(total=sum(map(len, chosen.values())), desc=f"prepare {task.name}", unit="img",
                  disable=not config.progress or None, dynamic_ncols=True) as bar:
            for split_name, members in chosen.items():
                for sample in members:
                    hq, lq, record = maker(sample)
                    paths = pair_paths(staging, split_name, sample.name)
                    write_image(paths.hq, hq)
                    write_image(paths.lq, lq)
                    records[sample.name] = {"subject": sample.subject, "origin": sample.origin, **record}
                    bar.update()
        options = config.regions_options or task_region_options(task.name, backend)
        regions = make_regions(staging, backend=backend, window=window, options=options, progress=config.progress)
        manifest = {
            "format": DATASET_FORMAT, **task.record(), "splits": {k: [s.name for s in v] for k, v in chosen.items()},
            "subjects": {k: sorted({s.subject for s in v}) for k, v in chosen.items()},
            "split_rules": split.rules, "dropped_for_gap": [samples[i].name for i in split.dropped],
            "left_out": left_out,
            "sources": found.records, "missing_sources": found.missing, "notes": found.notes,
            "degradation": {"ct_calibration": {k: v[1] for k, v in maker.calibrations.items()} or None,
                            "per_image": records},
            "regions": regions, "seed": config.seed, "limit": config.limit, "test_fraction": config.test_fraction,
            "val_fraction": config.val_fraction, "ct_noise_hu": config.ct_noise_hu,
            "tile_size": config.tile_size if task.name == "pathology" else None,
            "user_sources": [str(p) for p in config.sources], "ratmir_version": __version__,
            # the splits whose images this folder holds ('splits' above lists only them too)
            "made_splits": [name for name in SPLITS if name in config.splits],
        }
        (staging / DATASET_FILE).write_text(json.dumps(manifest, indent=1, default=_json_default))
        read_manifest(staging)
    skipped = {r["id"]: r.get("error") or f"not installed ({r.get('how_to_get', '')})"
               for r in found.records if r.get("status") != "used"}
    return PrepareReport(out=out, counts={k: len(v) for k, v in chosen.items()}, missing_sources=found.missing,
                         seconds=time.perf_counter() - start, skipped_sources=skipped,
                         left_out=len(left_out["names"]) if left_out else 0)


def _drop_unscorable(samples: list[Sample], *, config: PrepareConfig) -> tuple[list[Sample], dict[str, Any] | None]:
    """CT: the samples whose full-dose slice has at least ``config.ct_min_scored_fraction`` of its
    pixels in the scored window, and the record of those left out (None for other tasks). Reads
    every slice once more (acquired pairs: their full-dose image)."""
    if config.task != "ct" or config.ct_min_scored_fraction <= 0:
        return samples, None
    kept: list[Sample] = []
    fractions: dict[str, float] = {}
    for sample in samples:
        image = sample.load()
        fraction = scored_fraction(image.hq if isinstance(image, RealPair) else image)
        if fraction >= config.ct_min_scored_fraction:
            kept.append(sample)
        else:
            fractions[sample.name] = round(fraction, 4)
    if not kept:
        raise ValueError(f"every one of the {len(samples)} CT slices has less than "
                         f"{config.ct_min_scored_fraction:.0%} of its pixels in {list(SCORED_WINDOW_HU)} HU; expected "
                         "soft tissue (lower --ct-min-scored-fraction, or 0 to keep every slice)")
    rule = (f"left out: slices with less than {config.ct_min_scored_fraction:.0%} of their pixels inside "
            f"{list(SCORED_WINDOW_HU)} HU (the ct_window convention), where windowed PSNR/SSIM would score "
            "the air and bone that clip to the same value in both images rather than the noise")
    return kept, {"rule": rule, "min_scored_fraction": config.ct_min_scored_fraction, "count": len(fractions),
                  "of": len(samples), "names": sorted(fractions), "scored_fractions": fractions}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, tuple)):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"cannot write {type(value).__name__} to dataset.json")
