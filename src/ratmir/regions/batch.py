"""``ratmir regions``: label maps for a whole dataset.

For each image (file, or every supported file under a folder): skip it when its recorded
content key is unchanged, else read it, map it through the intensity window, partition it
(volumes slice by slice), write ``<stem>.nii.gz`` (+ ``--overlay`` PNGs) and the record. One
bad file does not stop the others: failures are collected and reported. ``workers > 1`` runs
files in separate processes; under ``torchrun`` each rank (``RANK``/``WORLD_SIZE``) takes
every WORLD_SIZE-th file.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._checks import check_positive_int
from .backends import BACKEND_NAMES, RegionBackend, build_backend
from .cache import RECORD_FORMAT, RECORD_SUFFIX, content_key, is_up_to_date, settings_fingerprint, write_record
from .intensity import WindowSpec, apply_window, parse_window, resolve_window
from .labelmap_io import LABEL_MAP_SUFFIX, save_label_map
from .overlay import save_overlay
from ..io.formats import InputFile, find_inputs, read_image
from .sam import configured_checkpoint

DEFAULT_WEIGHT_FREE_BACKEND = "felzenszwalb"
# Slices larger than this on a side are partitioned in near-equal blocks of at most this size,
# each on its own (regions do not cross block borders): felzenszwalb needs ~2.8 GB for one
# 3000^2 RGB image at once, ~0.36 GB per 1024^2 block. Images up to 1024^2 are unaffected.
REGION_BLOCK = 1024


@dataclass(frozen=True)
class RegionsConfig:
    """Everything ``ratmir regions`` needs (the CLI builds one; :func:`run_regions` takes it).

    ``backend`` is a name from ``BACKEND_NAMES`` or ``"auto"`` (``sam`` when a SAM checkpoint
    is configured, else felzenszwalb: :func:`resolve_backend_name`);
    ``backend_options`` are that backend's keyword options.
    """

    inputs: tuple[Path, ...]
    out: Path
    backend: str = "auto"
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    window: str = "auto"
    overlay: bool = False
    workers: int = 1
    force: bool = False
    progress: bool = True


@dataclass
class RegionsReport:
    backend: str
    rank: int = 0
    world_size: int = 1
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class _Job:
    """What a worker needs besides the backend (picklable)."""

    out: Path
    fingerprint: str
    window: WindowSpec
    overlay: bool
    force: bool


def resolve_backend_name(name: str, *, options: Mapping[str, Any]) -> str:
    """``auto`` -> ``sam`` if a SAM checkpoint is configured (option or env), else felzenszwalb.

    ``medsam`` (LiteMedSAM) is not part of ``auto``: it costs ~20x felzenszwalb's time per image
    on a CPU, and RAT trained on its maps scored no better (docs/decisions.md, "Default region
    backend"); ask for it by name.
    """
    if name == "auto":
        if configured_checkpoint(options.get("checkpoint")) is not None:
            return "sam"
        return DEFAULT_WEIGHT_FREE_BACKEND
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {('auto',) + BACKEND_NAMES}, got {name!r}")
    return name


def select_backend_options(name: str, *, given: Mapping[tuple[str, str, str], Any]) -> dict[str, Any]:
    """The options set (not None) for backend ``name``, from ``{(backend, option, flag): value}``.

    Raises ValueError naming the flag when an option of another backend is set.
    """
    options = {}
    for (owner, option, flag), value in given.items():
        if value is None:
            continue
        if owner != name:
            raise ValueError(f"{flag} applies to backend {owner!r}, but the backend is {name!r}")
        options[option] = value
    return options


def shard_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(rank, world size) from ``RANK``/``WORLD_SIZE`` (set by torchrun); (0, 1) when unset."""
    env = os.environ if env is None else env
    try:
        rank, world = int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"RANK and WORLD_SIZE must be integers, got RANK={env.get('RANK')!r}, "
                         f"WORLD_SIZE={env.get('WORLD_SIZE')!r}") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= RANK < WORLD_SIZE, got RANK={rank}, WORLD_SIZE={world}")
    return rank, world


def _num_regions(labels: np.ndarray) -> int | list[int]:
    if labels.ndim == 2:
        return int(np.unique(labels).size)
    return [int(np.unique(s).size) for s in labels]


def segment_pixels(pixels: np.ndarray, *, is_volume: bool, backend: RegionBackend,
                   window: WindowSpec, block: int = REGION_BLOCK) -> tuple[np.ndarray, tuple[float, float], list[np.ndarray]]:
    """Label map of an image [H, W(, 3)] or volume [D, H, W(, 3)] in physical units.

    The intensity ``window`` maps the pixels to [0, 1] (one window for all slices of a volume),
    each slice is partitioned by ``backend``; a slice larger than ``block`` on a side is
    partitioned block by block (see ``REGION_BLOCK``). Returns (labels [H, W] or [D, H, W], the
    resolved (low, high) window, the windowed slices).
    """
    check_positive_int("block", block)
    low, high = resolve_window(pixels, spec=window)
    image01 = apply_window(pixels, low=low, high=high)
    slices = list(image01) if is_volume else [image01]
    labels = [segment_blocks(s, backend=backend, block=block) for s in slices]
    labels = np.stack(labels) if is_volume else labels[0]
    spatial = pixels.shape[: (3 if is_volume else 2)]
    if labels.shape != spatial:
        raise ValueError(f"the {backend.name} label map has shape {labels.shape} but the image has shape {spatial}")
    return labels, (low, high), slices


def segment_blocks(image01: np.ndarray, *, backend: RegionBackend, block: int) -> np.ndarray:
    """``backend.segment(image01)`` for a slice [H, W(, 3)], in near-equal blocks of at most
    ``block`` pixels a side when it is larger; labels of different blocks never coincide."""
    h, w = image01.shape[:2]
    if h <= block and w <= block:
        return backend.segment(image01)
    rows = np.linspace(0, h, -(-h // block) + 1).astype(int)
    cols = np.linspace(0, w, -(-w // block) + 1).astype(int)
    labels = np.empty((h, w), dtype=np.int32)
    offset = 0
    for y0, y1 in zip(rows[:-1], rows[1:]):
        for x0, x1 in zip(cols[:-1], cols[1:]):
            part = backend.segment(image01[y0:y1, x0:x1])
            if part.shape != (y1 - y0, x1 - x0):
                raise ValueError(f"the {backend.name} label map has shape {part.shape} but the block has shape "
                                 f"{(y1 - y0, x1 - x0)}")
            _, dense = np.unique(part, return_inverse=True)
            labels[y0:y1, x0:x1] = dense.reshape(part.shape) + offset
            offset += int(dense.max()) + 1
    return labels


def _process_file(item: InputFile, *, backend: RegionBackend, job: _Job) -> tuple[str, Path]:
    """Make (or keep) the label map of one image; returns (``"written"``/``"skipped"``, path)."""
    label_path = job.out / f"{item.stem}{LABEL_MAP_SUFFIX}"
    record_path = job.out / f"{item.stem}{RECORD_SUFFIX}"
    key = content_key(item.path, fingerprint=job.fingerprint)
    if not job.force and is_up_to_date(label_path=label_path, record_path=record_path, key=key,
                                       need_overlays=job.overlay):
        return "skipped", label_path
    image = read_image(item.path)
    try:
        labels, (low, high), slices = segment_pixels(image.pixels, is_volume=image.is_volume, backend=backend,
                                                     window=job.window)
    except ValueError as exc:
        raise ValueError(f"{item.path}: {exc}") from exc
    save_label_map(label_path, labels, affine=image.affine)
    overlays = []
    if job.overlay:
        name = Path(item.stem).name
        for z, (img, lab) in enumerate(zip(slices, labels if image.is_volume else [labels], strict=True)):
            png = f"{name}_z{z:04d}.png" if image.is_volume else f"{name}.png"
            save_overlay(label_path.parent / png, img, lab)
            overlays.append(png)
    settings = json.loads(job.fingerprint)
    write_record(record_path, {
        "format": RECORD_FORMAT, "key": key, "source": str(item.path), "label_map": label_path.name,
        "backend": settings["backend"], "settings": settings["settings"],
        "window": {"spec": str(job.window), "low": low, "high": high},
        "shape": list(labels.shape), "num_regions": _num_regions(labels), "overlays": overlays,
        "ratmir": __version__,
    })
    return "written", label_path


def _safe_process(item: InputFile, *, backend: RegionBackend, job: _Job) -> tuple[str, Path, str]:
    try:
        status, path = _process_file(item, backend=backend, job=job)
        return status, path, ""
    except Exception as exc:  # noqa: BLE001 - one bad file must not lose the others
        named = isinstance(exc, ValueError) and str(item.path) in str(exc)
        return "failed", item.path, str(exc) if named else f"{item.path}: {type(exc).__name__}: {exc}"


@functools.lru_cache(maxsize=1)
def _worker_backend(name: str, options_json: str, threads: int) -> RegionBackend:
    """One backend per worker process (SAM loads once), built on its first file."""
    import torch

    torch.set_num_threads(threads)
    return build_backend(name, **json.loads(options_json))


def _worker_process(item: InputFile, name: str, options_json: str, threads: int, job: _Job) -> tuple[str, Path, str]:
    try:
        backend = _worker_backend(name, options_json, threads)
    except Exception as exc:  # noqa: BLE001
        return "failed", item.path, f"{item.path}: cannot build the backend: {type(exc).__name__}: {exc}"
    return _safe_process(item, backend=backend, job=job)


def _progress(total: int, *, enabled: bool, rank: int):
    from tqdm.auto import tqdm

    desc = "regions" if rank == 0 else f"regions[rank {rank}]"
    return tqdm(total=total, desc=desc, unit="img", disable=not enabled or None, dynamic_ncols=True)


def run_regions(config: RegionsConfig) -> RegionsReport:
    """Partition every image of ``config.inputs`` into ``config.out``; see the module docstring.

    Configuration errors (unknown backend, missing SAM checkpoint, bad window, ...) raise
    ValueError/TypeError before any file is touched; per-file problems are collected in the
    report's ``failures``.
    """
    if not isinstance(config, RegionsConfig):
        raise TypeError(f"config must be a RegionsConfig, got {type(config).__name__}")
    workers = check_positive_int("workers", config.workers)
    if not config.inputs:
        raise ValueError("inputs is empty: give at least one image file or folder")
    window = parse_window(config.window)
    options = dict(config.backend_options)
    name = resolve_backend_name(config.backend, options=options)
    rank, world = shard_from_env()
    backend = build_backend(name, **options)  # fails fast on bad options or a missing checkpoint
    job = _Job(out=Path(config.out), fingerprint=settings_fingerprint(backend=name, settings=backend.settings(),
                                                                       window=str(window)),
               window=window, overlay=config.overlay, force=config.force)
    items, errors = find_inputs(config.inputs)
    if not items and not errors:
        raise ValueError(f"no supported images found in {[str(p) for p in config.inputs]} "
                         "(expected PNG, TIFF, DICOM or NIfTI files)")
    report = RegionsReport(backend=name, rank=rank, world_size=world, failures=list(errors))
    items = items[rank::world]  # a rank may get none when there are fewer files than ranks

    def collect(result: tuple[str, Path, str]) -> None:
        status, path, message = result
        if status == "written":
            report.written.append(path)
        elif status == "skipped":
            report.skipped.append(path)
        else:
            report.failures.append((path, message))

    with _progress(len(items), enabled=config.progress, rank=rank) as bar:
        if workers == 1 or len(items) <= 1:
            for item in items:
                collect(_safe_process(item, backend=backend, job=job))
                bar.update()
        else:
            try:
                options_json = json.dumps(options, sort_keys=True)
            except TypeError:
                raise TypeError("workers > 1 needs JSON-serialisable backend_options (e.g. a checkpoint path, "
                                "not a model object)") from None
            del backend  # each worker builds its own
            threads = max(1, (os.cpu_count() or 1) // workers)
            context = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started threads
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(_worker_process, item, name, options_json, threads, job): item
                           for item in items}
                for future in as_completed(futures):
                    try:
                        collect(future.result())
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed for memory
                        path = futures[future].path
                        collect(("failed", path, f"{path}: worker failed: {type(exc).__name__}: {exc}"))
                    bar.update()
    report.failures.sort(key=lambda failure: str(failure[0]))
    return report
