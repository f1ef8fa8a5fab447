"""``ratmir restore``: restore image files and folders with a trained model.

- DICOM: a series in, a series out — pixel data replaced, every other tag kept, new
  SOPInstanceUID and one new SeriesInstanceUID per input series, SeriesDescription and
  DerivationDescription saying what was done, values in physical units with a valid
  RescaleSlope/Intercept. Pixels outside the model's normalisation range (e.g. -3024 padding)
  keep their input value.
- NIfTI: 2-D images and volumes (slice by slice), affine and header kept.
- Whole-slide images (SVS, NDPI, MRXS, SCN, BIF): region by region into a tiled BigTIFF
  (:mod:`ratmir.restore.slides`).
- PNG/TIFF: bit depth kept; pixel values are read as the task's units (RGB levels for
  pathology; for CT/PET prefer DICOM, NIfTI or float TIFF in HU / activity).

The normalisation comes from the model file (written by training) or from ``task``. Region
maps are computed on the fly with a region backend, or read from a folder of label maps
(``<stem>.nii.gz`` as ``ratmir regions`` writes them). Never overwrites an input, refuses an
output folder inside an input folder, refuses outputs that already exist (unless ``overwrite``)
and inputs without any image, and one bad file does not stop the others.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .._checks import check_choice, check_device, check_positive_int
from ..errors import OutputExistsError, UsageError
from ..io import read_dicom, read_nifti, read_png, read_tiff, write_dicom_like, write_nifti, write_png, write_tiff
from ..io.formats import InputFile, find_inputs, split_name
from ..models import load_pretrained, read_metadata
from ..models.precision import PRECISIONS, inference_precision
from ..regions import build_backend, load_label_map, parse_window
from ..regions.batch import resolve_backend_name, segment_pixels
from ..regions.labelmap_io import LABEL_MAP_SUFFIX
from ..tasks import get_task
from ..tasks.base import Normalisation
from .slides import restore_slide
from .tiling import restore_image


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
    failures: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


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


def _check_output(out: Path, inputs: tuple[Path, ...]) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} is a file; expected a folder for the restored images")
    out = out.resolve()
    for item in inputs:
        folder = item.resolve() if item.is_dir() else item.resolve().parent
        if out == folder or folder in out.parents:
            raise ValueError(f"output folder {out} is inside the input folder {folder}: choose another --out")


class _Restorer:
    def __init__(self, config: RestoreConfig) -> None:
        self.cfg = config
        self.norm, self.task = model_normalisation(config.model, config.task)
        self.model = load_pretrained(config.model, map_location=config.device).eval()
        self.label_dir = Path(config.regions) if Path(config.regions).is_dir() else None
        self.backend = None if self.label_dir else build_backend(resolve_backend_name(config.regions, options={}))
        self.window = parse_window(config.window)
        self.series_uids: dict[str, str] = {}

    def regions_for(self, item: InputFile, pixels: np.ndarray, *, is_volume: bool) -> np.ndarray:
        spatial = pixels.shape[: 3 if is_volume else 2]
        if self.label_dir is not None:
            return load_label_map(self.label_dir / f"{item.stem}{LABEL_MAP_SUFFIX}", expected_shape=spatial)
        labels, _, _ = segment_pixels(pixels, is_volume=is_volume, backend=self.backend, window=self.window)
        return labels

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

    def restore_file(self, item: InputFile) -> Path:
        _, fmt = split_name(item.path)
        target = output_path(self.cfg.out, item)
        if fmt == "dicom":
            image = read_dicom(item.path)
            if image.pixels.ndim != 2 or int(getattr(image.dataset, "NumberOfFrames", 1) or 1) > 1:
                raise ValueError(f"{item.path}: multi-frame or colour DICOM is not supported (shape {image.pixels.shape})")
            labels = self.regions_for(item, image.pixels, is_volume=False)
            restored = self.run_slices(image.pixels[None], labels[None], str(item.path))[0]
            ds = image.dataset
            uid = self.series_uids.setdefault(str(getattr(ds, "SeriesInstanceUID", item.path.parent)),
                                              _new_uid())
            model = self.model.architecture.upper()
            return write_dicom_like(
                ds, restored, target,
                series_uid=uid, series_description=f"{getattr(ds, 'SeriesDescription', '')} [ratmir {model}]".strip(),
                derivation=f"Restored by ratmir {model} ({self.task}) from series {getattr(ds, 'SeriesInstanceUID', '?')}",
            )
        if fmt == "slide":
            if self.backend is None:
                raise ValueError(f"{item.path}: slides need a region backend (--regions NAME), not a label-map folder")
            return restore_slide(item.path, target, model=self.model,
                                 normalisation=self.norm, backend=self.backend, window=self.window,
                                 device=self.cfg.device)
        if fmt == "nifti":
            image = read_nifti(item.path)
            is_volume = image.pixels.ndim == 3
            labels = self.regions_for(item, image.pixels, is_volume=is_volume)
            vol = image.pixels if is_volume else image.pixels[None]
            lab = labels if is_volume else labels[None]
            restored = self.run_slices(vol, lab, str(item.path))
            return write_nifti(target, restored if is_volume else restored[0],
                               affine=image.affine, header=image.header)
        reader, writer = (read_png, write_png) if fmt == "png" else (read_tiff, write_tiff)
        raw = reader(item.path)
        if raw.ndim == 3 and raw.shape[-1] == 4:
            raw = raw[..., :3]
        labels = self.regions_for(item, raw.astype(np.float32), is_volume=False)  # float copy freed here
        restored = self.run_slices(raw[None], labels[None], str(item.path))[0]
        return writer(target, _to_dtype(restored, raw.dtype))


# numpy dtypes that torch.from_numpy takes and compares without surprises; others go to float32
_TORCH_SAFE = tuple(np.dtype(t) for t in ("uint8", "int8", "int16", "int32", "int64", "float32", "float64"))


def output_path(out: Path, item: InputFile) -> Path:
    """Where the restored ``item`` is written: OUT/<stem> with the format's suffix (a DICOM file
    keeps its name)."""
    _, fmt = split_name(item.path)
    base = out / item.stem
    if fmt == "dicom":
        return base.with_name(item.path.name if item.path.suffix else base.name + ".dcm")
    suffix = {"nifti": ".nii.gz", "png": ".png"}.get(fmt, ".tiff")  # tiff and slides: TIFF
    return base.with_name(base.name + suffix)


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.round(values, out=values if values.dtype == np.float32 else None)
        return np.clip(values, info.min, info.max, out=values).astype(dtype)
    return values.astype(np.float32, copy=False)


def _new_uid() -> str:
    from pydicom.uid import generate_uid

    return generate_uid()


def restore_files(config: RestoreConfig) -> RestoreReport:
    """Restore every image of ``config.inputs`` into ``config.out``; per-file failures are
    collected in the report (configuration errors raise before any file is touched)."""
    _check_output(config.out, config.inputs)
    items, errors = find_inputs(list(config.inputs))
    if not items and not errors:
        raise UsageError(f"no images found in {', '.join(map(str, config.inputs))}: expected DICOM, NIfTI, PNG, "
                         "TIFF or whole-slide files")
    existing = [p for p in (output_path(config.out, item) for item in items) if p.exists()]
    if existing and not config.overwrite:
        raise OutputExistsError(f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; pass --overwrite "
                                "to replace them, or choose another --out")
    restorer = _Restorer(config)
    report = RestoreReport(failures=[message for _, message in errors])
    config.out.mkdir(parents=True, exist_ok=True)
    for item in tqdm(items, desc="restore", unit="file", disable=not config.progress):
        start = time.perf_counter()
        try:
            path = restorer.restore_file(item)
        except Exception as exc:  # noqa: BLE001 - one bad file must not lose the others
            report.failures.append(str(exc) if str(item.path) in str(exc) else f"{item.path}: {type(exc).__name__}: {exc}")
            continue
        report.written.append(path)
        report.lines.append(f"{item.path} -> {path} ({time.perf_counter() - start:.1f} s)")
    return report

