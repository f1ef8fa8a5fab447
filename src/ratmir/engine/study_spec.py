"""The study spec: a YAML file naming datasets, experiments (engine configs + overrides),
seeds, test-time region sources and the report's reference method.

::

    name: ct_table4
    seeds: [0, 1, 2]
    reference: rat                     # every method is compared with this one
    datasets:                          # made once, under OUT/datasets/<name> unless 'root' is given
      ct: {prepare: {task: ct, limit: 40}}            # `ratmir prepare` options
      ct_fz: {from: ct, regions: {backend: slic}}     # same images, other region maps
    common: [train.iterations=300]     # --set overrides for every experiment
    experiments:
      - {name: rat, config: ../ct.yaml, dataset: ct, set: [model.options.width=16]}
      - {name: redcnn, config: ../baselines/ct_redcnn.yaml, dataset: ct, region_sources: [dataset]}
    region_sources: [dataset, felzenszwalb, grid, none, shuffled]   # default for every experiment
    evaluate: {split: test, tile: 512, overlap: 32, max_images: 8}   # tile 0 or null: whole images
    report: {convention: ct_window, resamples: 10000, level: 0.95, figures: 2, seed: 0}

Relative paths (``config``, a dataset's ``root``) are relative to the spec file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from .config import ConfigError, read_yaml_mapping
from .region_sources import RegionSource, parse_region_source
from .stats import DEFAULT_RESAMPLES


def _check_keys(where: str, data: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__} ({data!r})")
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (expected one of {list(allowed)})"
            raise ConfigError(f"unknown key '{where}.{key}'{hint}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigError(f"{where} lacks {missing}")
    return data


def _str_list(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of 'section.key=value' strings, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    root: Path
    prepare: dict[str, Any] | None = None  # PrepareConfig fields (without 'out')
    source: str | None = None  # 'from': another dataset whose images are reused
    regions: dict[str, Any] | None = None  # {backend, options, window} for a derived dataset


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    config: Path
    overrides: tuple[str, ...] = ()
    dataset: str | None = None
    region_sources: tuple[RegionSource, ...] = ()


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: Path
    seeds: tuple[int, ...]
    reference: str
    experiments: tuple[ExperimentSpec, ...]
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    common: tuple[str, ...] = ()
    split: str = "test"
    tile: int | None = 512
    overlap: int = 32
    max_images: int | None = None  # test images per evaluation, evenly spaced (None: all)
    convention: str | None = None  # the report's headline convention (default: the task's first)
    resamples: int = DEFAULT_RESAMPLES
    level: float = 0.95
    bootstrap_seed: int = 0
    figures: int = 2

    def experiment(self, name: str) -> ExperimentSpec:
        return next(e for e in self.experiments if e.name == name)

    def units(self) -> list[tuple[ExperimentSpec, int]]:
        """Every (experiment, seed), seed-major: a study stopped early has all methods of seed 0."""
        return [(e, s) for s in self.seeds for e in self.experiments]

    def overrides(self, experiment: ExperimentSpec, seed: int) -> list[str]:
        extra = [f"data.root={self.datasets[experiment.dataset].root}"] if experiment.dataset else []
        return [*self.common, *experiment.overrides, *extra, f"train.seed={seed}", f"name={experiment.name}"]

    def _portable(self, path: Path, *, out: Path) -> str:
        path = Path(path).resolve()
        if path.is_relative_to(out.resolve()):
            return "OUT/" + path.relative_to(out.resolve()).as_posix()
        return "SPEC/" + Path(os.path.relpath(path, self.path.parent)).as_posix()

    def _records(self, *, out: Path) -> dict[str, Any]:
        def dataset(d: DatasetSpec) -> list[Any]:
            return [self._portable(d.root, out=out), d.prepare, d.source, d.regions]

        def experiment(e: ExperimentSpec) -> list[Any]:
            return [e.name, self._portable(e.config, out=out), e.overrides, e.dataset,
                    [vars(s) for s in e.region_sources]]

        return {"shared": {"common": self.common, "split": self.split, "tile": self.tile,
                           "overlap": self.overlap, "max_images": self.max_images},
                "datasets": {k: dataset(d) for k, d in self.datasets.items()},
                "experiments": [experiment(e) for e in self.experiments]}

    def fingerprint(self, *, out: Path) -> str:
        """A hash of what determines the runs (seeds, datasets, experiments, evaluation). Paths enter
        relative to ``out`` (the study folder) or to the spec's folder, so a clone of the repository
        in another directory, or on another machine, has the same fingerprint."""
        r = self._records(out=out)
        return _hash({"seeds": self.seeds, **r["shared"], "datasets": r["datasets"], "experiments": r["experiments"]})

    def part_fingerprints(self, *, out: Path) -> dict[str, Any]:
        """The fingerprint split by part: ``shared`` (common overrides, evaluation), one hash per
        dataset and per experiment, and the seeds. A study folder may grow by experiments, datasets
        or seeds whose names are new; a part it already holds must keep its hash."""
        r = self._records(out=out)
        return {"shared": _hash(r["shared"]), "datasets": {k: _hash(v) for k, v in r["datasets"].items()},
                "experiments": {e[0]: _hash(e) for e in r["experiments"]}, "seeds": list(self.seeds)}


def _hash(record: Any) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


_TOP = ("name", "seeds", "reference", "datasets", "common", "experiments", "region_sources", "evaluate", "report")


def load_study(path: str | os.PathLike, *, out: str | os.PathLike) -> StudySpec:
    """Read and check a study spec; datasets without a 'root' live under ``out/datasets``."""
    path = Path(path).resolve()
    data = read_yaml_mapping(path, what="study spec")
    _check_keys("study", data, _TOP, required=("seeds", "experiments"))
    here, out = path.parent, Path(out).resolve()

    seeds = data["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ConfigError(f"study.seeds must be a non-empty list of distinct ints >= 0, got {seeds!r}")

    datasets: dict[str, DatasetSpec] = {}
    for name, d in (data.get("datasets") or {}).items():
        d = _check_keys(f"datasets.{name}", d or {}, ("root", "prepare", "from", "regions"))
        root = (here / d["root"]).resolve() if d.get("root") else out / "datasets" / name
        if d.get("prepare") is not None and d.get("from") is not None:
            raise ConfigError(f"datasets.{name}: give 'prepare' or 'from', not both")
        if d.get("from") is not None:
            if d["from"] not in datasets:
                raise ConfigError(f"datasets.{name}.from must name a dataset listed before it, got {d['from']!r}")
            _check_keys(f"datasets.{name}.regions", d.get("regions"), ("backend", "options", "window"),
                        required=("backend",))
        if d.get("prepare") is not None:
            _check_keys(f"datasets.{name}.prepare", d["prepare"], tuple(_prepare_fields()), required=("task",))
        if not d.get("root") and d.get("prepare") is None and d.get("from") is None:
            raise ConfigError(f"datasets.{name} needs 'root' (an existing dataset), 'prepare' or 'from'")
        datasets[name] = DatasetSpec(name=name, root=root, prepare=d.get("prepare"), source=d.get("from"),
                                     regions=d.get("regions"))

    default_sources = data.get("region_sources") or ["dataset"]
    experiments: list[ExperimentSpec] = []
    raw = data["experiments"]
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"study.experiments must be a non-empty list, got {raw!r}")
    for i, e in enumerate(raw):
        e = _check_keys(f"experiments[{i}]", e, ("name", "config", "set", "dataset", "region_sources"),
                        required=("name", "config"))
        name = str(e["name"])
        if name in (x.name for x in experiments) or not name or "/" in name:
            raise ConfigError(f"experiments[{i}].name must be unique, non-empty and without '/', got {name!r}")
        if e.get("dataset") is not None and e["dataset"] not in datasets:
            raise ConfigError(f"experiments[{i}].dataset must be one of {sorted(datasets)}, got {e['dataset']!r}")
        config = (here / e["config"]).resolve()
        if not config.is_file():
            raise ConfigError(f"experiments[{i}].config: file not found: {config}")
        try:
            sources = tuple(parse_region_source(s) for s in (e.get("region_sources") or default_sources))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"experiments[{i}].region_sources: {err}") from err
        if "dataset" not in [s.name for s in sources]:
            sources = (parse_region_source("dataset"), *sources)
        if len({s.name for s in sources}) != len(sources):
            raise ConfigError(f"experiments[{i}].region_sources: names must be unique, got {[s.name for s in sources]}")
        experiments.append(ExperimentSpec(name=name, config=config, overrides=_str_list(f"experiments[{i}].set",
                                                                                          e.get("set")),
                                          dataset=e.get("dataset"), region_sources=sources))

    reference = data.get("reference", experiments[0].name)
    if reference not in [e.name for e in experiments]:
        raise ConfigError(f"study.reference must be one of {[e.name for e in experiments]}, got {reference!r}")
    ev = _check_keys("evaluate", data.get("evaluate") or {}, ("split", "tile", "overlap", "max_images"))
    rep = _check_keys("report", data.get("report") or {}, ("convention", "resamples", "level", "seed", "figures"))
    spec = StudySpec(name=str(data.get("name", path.stem)), path=path, seeds=tuple(seeds), reference=reference,
                     experiments=tuple(experiments), datasets=datasets,
                     common=_str_list("study.common", data.get("common")), split=ev.get("split", "test"),
                     tile=ev.get("tile", 512) or None, overlap=ev.get("overlap", 32),
                     max_images=ev.get("max_images"), convention=rep.get("convention"),
                     resamples=rep.get("resamples", DEFAULT_RESAMPLES), level=rep.get("level", 0.95),
                     bootstrap_seed=rep.get("seed", 0), figures=rep.get("figures", 2))
    if not (isinstance(spec.resamples, int) and spec.resamples >= 100):
        raise ConfigError(f"report.resamples must be an int >= 100, got {spec.resamples!r}")
    if not 0 < spec.level < 1:
        raise ConfigError(f"report.level must be in (0, 1), got {spec.level!r}")
    return spec


def _prepare_fields() -> list[str]:
    import dataclasses

    from ..data.prepare import PrepareConfig

    return [f.name for f in dataclasses.fields(PrepareConfig) if f.name not in ("out", "force", "progress")]
