"""``ratmir evaluate``: restore a split on full images and score it under named conventions.

Writes into OUT: ``per_image.csv`` (one row per image, method and convention), ``summary.json``
(mean ± std per method and convention, with what was evaluated), optional ``regions.csv``
(PSNR inside every region of every image), and ``figures/<name>.png`` (LQ / output / HQ with a
zoomed inset, errors on one scale, region boundaries; :mod:`ratmir.engine.figures`). The LQ
input is scored too (method ``input``), so every table shows what the model adds. The region
maps are the dataset's, or another source's (``regions=``, :mod:`ratmir.engine.region_sources`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .. import __version__
from .._checks import check_choice, check_device, check_positive_int
from .._files import atomic_path
from ..conventions import CONVENTIONS, TASK_CONVENTIONS, score
from ..data import PairedDataset
from ..data.splits import evenly_spaced
from ..errors import OutputExistsError
from ..metrics import region_psnr
from ..models import load_pretrained, read_metadata
from ..models.hub import is_packaged, resolve_weights  # noqa: F401 - resolve_weights: public here too
from ..models.precision import PRECISIONS, inference_precision, resolve_precision
from ..restore import restore_image
from .figures import comparison_figure, display_image  # noqa: F401 - display_image: public here too
from .region_sources import RegionProvider, RegionSourceSpec
from .stats import mean_std


def nonfinite_note(stats: dict[str, Any], *, metric: str) -> str:
    """'' or ' [k of n METRIC values non-finite, not in mean/std]' for a summary entry."""
    k = int(stats.get("nonfinite", 0))
    return f" [{k} of {stats['n']} {metric} values non-finite, not in mean/std]" if k else ""


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """One line per method of a ``summary.json``: mean ± std per convention, with the count of
    non-finite scores when there are any."""
    lines = []
    for method, convs in summary["results"].items():
        cells = ", ".join(f"{c} {m['psnr']['mean']:.2f}±{m['psnr']['std']:.2f} dB / {m['ssim']['mean']:.4f}"
                          + nonfinite_note(m["psnr"], metric="PSNR") + nonfinite_note(m["ssim"], metric="SSIM")
                          for c, m in convs.items())
        lines.append(f"{method:>6}: {cells}")
    return lines


EVALUATION_FILES = ("per_image.csv", "regions.csv", "summary.json", "figures")


def _check_out(out: Path, *, overwrite: bool) -> None:
    """Refuse an OUT that is a file, or a folder that already holds files (unless ``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} is a file; expected a folder for the evaluation")
    if out.is_dir() and not overwrite:
        held = sorted(p.name for p in out.iterdir())
        if held:
            raise OutputExistsError(f"{out} already holds {', '.join(held[:3])}{' ...' if len(held) > 3 else ''}; "
                                    "pass --overwrite to replace the evaluation, or choose another --out")


def _clear_previous(out: Path) -> None:
    """Remove what an earlier evaluation wrote into ``out`` (nothing else), so no stale file
    (e.g. a regions.csv of a run with --region-metrics) stays beside the new ones."""
    for name in EVALUATION_FILES:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def evaluate(weights: str | os.PathLike, *, data: str | os.PathLike, split: str = "test",
             out: str | os.PathLike | None = None, conventions: tuple[str, ...] | None = None,
             tile: int | None = 512, overlap: int = 32, figures: int = 4, region_metrics: bool = False,
             device: str = "cpu", label: str | None = None, progress: bool = True,
             overwrite: bool = False, regions: RegionSourceSpec = "dataset",
             max_images: int | None = None, precision: str = "fp32") -> Path:
    """Evaluate a model on a prepared dataset; returns the path of ``summary.json``.

    ``out`` (default RUN/evaluation) must not hold files yet; ``overwrite`` replaces an earlier
    evaluation there (its files only). Everything is checked before anything is written.
    ``regions``: where the label maps come from (:mod:`ratmir.engine.region_sources`): the
    dataset's own (default), a region backend by name, ``shuffled`` or ``shifted``.
    ``max_images``: score at most this many images of the split, evenly spaced through it.
    ``precision``: ``"fp32"``, ``"bf16"`` or ``"auto"`` (:mod:`ratmir.models.precision`).
    """
    if tile is not None:
        check_positive_int("tile", tile)
        check_positive_int("overlap", overlap, minimum=0)
        if overlap >= tile:
            raise ValueError(f"overlap must be smaller than tile ({tile}), got {overlap}")
    check_positive_int("figures", figures, minimum=0)
    check_device("device", device)
    check_choice("precision", precision, PRECISIONS)
    weights = resolve_weights(weights)
    run_dir = weights.parent
    if out is None:  # a packaged model's folder is the installed package: its evaluation goes here instead
        out = Path("evaluation") / weights.stem if is_packaged(weights) else run_dir / "evaluation"
    out = Path(out)
    _check_out(out, overwrite=overwrite)
    meta = read_metadata(weights)
    dataset = PairedDataset(data, split)
    provider = RegionProvider(regions, dataset)
    task = dataset.manifest["task"]
    if meta.get("task") not in (None, task):
        raise ValueError(f"{weights} was trained for task {meta['task']!r}; the dataset {data} is {task!r}")
    model = load_pretrained(weights, map_location=device).eval()
    if model.in_channels != dataset.channels:
        raise ValueError(f"{weights} expects {model.in_channels} channel(s); the dataset {data} has {dataset.channels}")
    conventions = tuple(conventions or TASK_CONVENTIONS[task])
    for c in conventions:
        if c not in CONVENTIONS:
            raise ValueError(f"convention must be one of {tuple(CONVENTIONS)}, got {c!r}")
    if overwrite:
        _clear_previous(out)
    out.mkdir(parents=True, exist_ok=True)
    norm = dataset.normalisation
    label = label or (run_dir.name if weights.name == "model.safetensors" else weights.stem)

    rows: list[dict[str, Any]] = []
    region_rows: list[dict[str, Any]] = []
    scores: dict[str, dict[str, dict[str, list[float]]]] = {}
    indices = evenly_spaced(range(len(dataset)), limit=max_images)
    for n, i in enumerate(tqdm(indices, desc=f"evaluate {label}", disable=not progress)):
        item = dataset[i]
        lq, hq = item["lq"][None].to(device), item["hq"][None].to(device)
        labels = provider(i, item)[None].to(device)
        with torch.no_grad(), inference_precision(precision, device):
            pred = restore_image(model, lq, labels, tile=tile, overlap=overlap).float()
        for method, image in (("model", pred), ("input", lq)):
            for conv in conventions:
                res = score(image, hq, convention=conv, normalisation=norm)
                row = {"name": item["name"], "method": method, "convention": conv,
                       **{k: float(v[0]) for k, v in res.items()}}
                rows.append(row)
                bucket = scores.setdefault(method, {}).setdefault(conv, {})
                for k in ("psnr", "ssim", "rmse"):
                    bucket.setdefault(k, []).append(row[k])
        if region_metrics:
            for lab, value in region_psnr(pred.clamp(0, 1), hq, labels, data_range=1.0)[0].items():
                region_rows.append({"name": item["name"], "label": lab, "psnr": value,
                                    "pixels": int((labels == lab).sum())})
        if n < figures:
            comparison_figure(out / "figures" / f"{item['name']}.png", lq=lq, outputs={label: pred}, hq=hq,
                              regions=labels, task=task, norm=norm, dpi=80)

    write_csv(out / "per_image.csv", rows)
    if region_metrics:
        write_csv(out / "regions.csv", region_rows)
    summary = {
        "label": label, "task": task, "split": split, "dataset": str(Path(data).resolve()),
        "n_images": len(indices), "weights": str(weights.resolve()), "architecture": meta["architecture"],
        "model_config": json.loads(meta["config"]), "tile": tile, "overlap": overlap,
        "precision": resolve_precision(precision, device),
        "region_source": provider.record(),
        "conventions": {c: CONVENTIONS[c].record(norm) for c in conventions},
        "results": {m: {c: {k: mean_std(v) for k, v in per.items()} for c, per in convs.items()}
                    for m, convs in scores.items()},
        "ratmir_version": __version__,
    }
    path = out / "summary.json"
    with atomic_path(path) as tmp:  # written last and whole: its presence means a finished evaluation
        tmp.write_text(json.dumps(summary, indent=2))
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        if not rows:
            return
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
