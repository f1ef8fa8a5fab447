"""``ratmir models package``: turn a finished RUN into a packaged model with a model card.

The card is written from what the run and its dataset record, never by hand: the dataset's
sources and licences, splits and degradation (``dataset.json``), the recipe (``RUN/config.yaml``),
the budget and the validation curve (``RUN/metrics.jsonl``), and the test split scored here, with
paired bootstrap intervals against the input and against a comparison model of the same dataset.
"""

from __future__ import annotations

import copy
import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..conventions import MAIN_CONVENTION
from ..models import load_pretrained, read_metadata, save_pretrained
from ..models.hub import PackagedModel, add_packaged_model, stored_values
from .checkpoint import load_checkpoint
from .evaluate import evaluate
from .stats import format_mean_std, markdown_table, mean_std, nonfinite_flag, paired_comparison

Scores = dict[tuple[str, str], dict[str, dict[str, float]]]  # (method, convention) -> image -> metric -> value

INTENDED_USE = ("Research and demonstration: a first look at what region attention does on your images, a "
                "starting point for fine-tuning (`ratmir train CONFIG --init NAME`) and a fixture for pipelines. "
                "**Not for clinical use**: not validated on patients, not a medical device.")


def known_limits(manifest: dict[str, Any], *, iterations: int) -> list[str]:
    """The card's limits, from what the dataset records (its sources, degradation and settings)."""
    task = manifest["task"]
    data = {"ct": "the few real CT slices that Python packages ship (the sources above; one head CT volume gives "
                  "most of them), not a clinical low-dose dataset such as AAPM-Mayo",
            "pet": "digital brain phantoms built from MNI templates (nilearn), not patient PET",
            "pathology": "the few sample images that Python packages ship (the sources above), not a pathology "
                         "dataset"}.get(task, "the sources above")
    test = manifest["splits"].get("test", [])
    subjects = manifest.get("subjects", {}).get("test", [])
    lines = [f"Trained on {data}. The test split is small ({len(test)} images from {len(subjects)} subject(s)): its "
             "intervals describe these images, not other scanners, protocols or stains."]
    degradation = {
        "ct": "The quarter dose is simulated (extra Poisson noise in a 2D parallel-beam sinogram, FBP)"
              + (f", calibrated to a full-dose noise of {manifest['ct_noise_hu']} HU" if manifest.get("ct_noise_hu")
                 else "") + "; real scanners (helical, iterative reconstruction) make other noise.",
        "pet": "The low dose is simulated: 1/12 list-mode decimation of Poisson counts in a 2D parallel-beam model "
               "(4.5 mm blur, attenuation, OSEM); randoms and scatter are not modelled.",
        "pathology": "The low resolution is simulated (the task's 4x degradation); real optics and staining vary.",
    }
    if task in degradation:
        lines.append(degradation[task])
    lines.append(f"A small model trained {iterations} iterations on a CPU, far below the paper's 200K; it has not "
                 "been compared with the authors' models (they released none).")
    noncommercial = [str(r.get("id")) for r in manifest.get("sources", []) if isinstance(r, dict)
                     and r.get("status", "used") == "used" and "BY-NC" in str(r.get("description", ""))]
    lines.append("The weights are derived from the sources above, and their licences bear on how the weights may be "
                 "used" + (f"; {', '.join(noncommercial)} carries a non-commercial (CC BY-NC) licence of its own"
                           if noncommercial else "") + ".")
    return lines


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
    machine: str = ""  # where the runs trained, as the maintainer states it (e.g. "2 CPU cores, torch 2.14.1")
    progress: bool = True
    resamples: int = 10_000
    checkpoint: str = "final"  # "final" (RUN/model.safetensors) or "best" (the validation-best weights), both runs


CHECKPOINTS = ("final", "best")


def _best_weights(run: Path) -> tuple[Any, dict[str, str]]:
    """The model of ``run/checkpoints/best.pt`` (the weights of the highest validation PSNR) with the
    final file's metadata and that checkpoint's iteration, in memory (raises on a bad file)."""
    final = run / "model.safetensors"
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    model = load_pretrained(final)
    try:
        model.load_state_dict(best["model"])
    except (KeyError, RuntimeError) as err:
        raise ValueError(f"{run}/checkpoints/best.pt does not hold the weights of {final}: {err}") from err
    meta = {k: v for k, v in read_metadata(final).items() if k not in ("format", "ratmir_version", "architecture",
                                                                       "config")}
    meta.update(iteration=str(int(best["iteration"])), selected="best validation PSNR",
                selected_val_psnr=f"{float(best['metrics']['psnr']):.4f}")
    return model, meta


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
    curve: dict[int, tuple[int, float, float | None]] = {}
    windows: dict[int, float] = {}  # a resumed run logs some iterations again: the last record counts
    for line in metrics_jsonl.read_text().splitlines():
        row = json.loads(line)
        if "val_psnr" in row:
            curve[int(row["iteration"])] = (int(row["iteration"]), float(row["val_psnr"]), row.get("val_gain_db"))
        elif "it_per_s" in row and row["it_per_s"] > 0:
            windows[int(row["iteration"])] = float(row["it_per_s"])
    seconds, last = 0.0, 0
    for iteration in sorted(windows):
        seconds += (iteration - last) / windows[iteration]
        last = iteration
    return [curve[i] for i in sorted(curve)], seconds


def _evaluate(run: Path, weights: Path, *, data: Path, label: str, progress: bool) -> Path:
    out = run / "evaluation-package"
    evaluate(weights, data=data, split="test", out=out, figures=0, label=label, progress=progress, overwrite=True)
    return out / "per_image.csv"


def _arrays(scores: dict[str, dict[str, float]], other: dict[str, dict[str, float]],
            metric: str) -> tuple[np.ndarray, np.ndarray]:
    names = sorted(set(scores) & set(other))
    return np.array([scores[n][metric] for n in names]), np.array([other[n][metric] for n in names])


def _comparison_rows(scores: Scores, *, conventions: list[str], pairs: list[tuple[tuple[str, str], tuple[str, str]]],
                     resamples: int) -> list[list[str]]:
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


def _score_rows(scores: Scores, *, conventions: list[str], methods: list[tuple[str, str]]) -> list[list[str]]:
    rows = []
    for conv in conventions:
        for method, label in methods:
            per = scores.get((method, conv))
            if per:
                psnr, ssim = (mean_std([v[k] for v in per.values()]) for k in ("psnr", "ssim"))
                rows.append([conv, label, format_mean_std(psnr["mean"], psnr["std"]) + nonfinite_flag(psnr["nonfinite"]),
                             format_mean_std(ssim["mean"], ssim["std"], digits=4) + nonfinite_flag(ssim["nonfinite"])])
    return rows


def _card_settings(config: dict[str, Any]) -> str:
    """The run's settings as YAML, without machine paths."""
    shown = copy.deepcopy({k: config[k] for k in ("model", "data", "loss", "optim", "train")})
    shown["data"]["root"] = "DATASET"
    if shown["model"].get("init"):
        shown["model"]["init"] = Path(str(shown["model"]["init"])).name
    return yaml.safe_dump(shown, sort_keys=False, default_flow_style=None).rstrip()


def _splits_text(manifest: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {len(v)} images ({', '.join(manifest.get('subjects', {}).get(k, [])) or '-'})"
                       for k, v in manifest["splits"].items())
    rules = "; ".join(f"{group}: {r.get('rule', '?')}" for group, r in (manifest.get("split_rules") or {}).items()
                      if isinstance(r, dict))
    return counts + (f". Split rules per source group: {rules} (validation is carved from the training side)"
                     if rules else "")


def render_card(*, name: str, meta: dict[str, str], manifest: dict[str, Any], config: dict[str, Any],
                curve: list[tuple[int, float, float | None]], seconds: float, scores: Scores,
                compare_label: str | None, retrain: str, size_bytes: int, parameters: int, resamples: int,
                compare_budget: str = "", machine: str = "") -> str:
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
    per_image = list(manifest.get("degradation", {}).get("per_image", {}).values())
    shared = {k: v for k, v in (per_image[0].items() if per_image else ())
              if k not in ("subject", "origin", "seed", "versions", "kind", "task")
              and all(r.get(k) == v for r in per_image) and not isinstance(v, (dict, list))}
    regions = manifest.get("regions") or {}
    main_score = mean_std([v["psnr"] for v in scores[("model", main)].values()])
    iterations = int(config["train"]["iterations"])
    init = (f"; fine-tuned from `{Path(str(model_cfg['init'])).name}`, so the budget and the recipe below are the "
            "fine-tuning's" if model_cfg.get("init") else "")
    selected = int(meta["iteration"]) if meta.get("selected") else None
    chosen = (f"; the weights are the validation-best checkpoint, iteration {selected} (`RUN/checkpoints/best.pt`)"
              if selected is not None else "")
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
        f"| budget | {iterations} iterations in {_minutes(seconds)} (from the run's log)"
        + (f" on {machine}" if machine else "") + f"{init}{chosen} |",
        f"| test split | {main} {main_score['mean']:.2f} dB over {len(scores[('model', main)])} images |", "",
        "## Use", "", "```bash",
        f"ratmir restore SCANS/ --model {name} --out restored/      # DICOM, NIfTI, PNG, TIFF in; the same out",
        f"ratmir evaluate {name} --data DATASET                    # score a dataset made by `ratmir prepare`",
        f"ratmir train CONFIG --out RUN --init {name}              # fine-tune (same model options)",
        "```", "",
        "## Training data", "",
        f"`ratmir prepare {task}` (" + ", ".join(f"{k} {manifest.get(k)}" for k in PREPARE_SETTINGS if k in manifest)
        + f"): {_splits_text(manifest)}.",
        "", *markdown_table(["source", "package", "licence", "what"],
                            [[s["id"], f"{s.get('package') or '-'} {s.get('package_version') or ''}".strip(),
                              s.get("licence", "?"), s.get("description", s.get("what", ""))] for s in used]), "",
        f"Degradation: {manifest.get('description') or 'not recorded in dataset.json'}"
        + ("; parameters shared by every image: " + ", ".join(f"{k} = {v}" for k, v in shared.items())
           if shared else "") + ".", "",
        "## Recipe", "", f"Retrain: `{retrain}`"
        + (", then package its validation-best weights (`ratmir models package RUN --checkpoint best ...`)"
           if selected is not None else "") + ". The run's full settings:", "", "```yaml", _card_settings(config),
        "```", "",
        "## Validation curve", "",
        f"Validation split ({_first(config['data'].get('val_max_images'))} images), PSNR over the full range:", "",
        *markdown_table(["iteration", "val PSNR (dB)", "gain over the input (dB)"],
                        [[f"{i} (packaged)" if i == selected else str(i), f"{p:.2f}", "-" if g is None else f"{g:+.2f}"]
                         for i, p, g in curve]), "",
        "## Test split", "",
        f"{len(scores[('model', main)])} images, full size, mean ± std"
        + (f"; `{compare_label}` is the same engine's comparison model on the same data ({compare_budget})"
           if compare_label else "") + ":", "",
        *markdown_table(["convention", "method", "PSNR (dB)", "SSIM"], _score_rows(scores, conventions=conventions,
                                                                               methods=methods)), "",
        f"Paired differences on the same images, 95 % bootstrap intervals ({resamples} resamples):", "",
        *markdown_table(["convention", "difference", "metric", "mean", "95 % interval", "images better", "verdict"],
                        _comparison_rows(scores, conventions=conventions, pairs=pairs, resamples=resamples)), "",
        "## Known limits", "", *[f"- {line}" for line in known_limits(manifest, iterations=iterations)], "",
    ]
    return "\n".join(lines)


def _check_request(request: PackageRequest, data: Path) -> None:
    """Every input checked before anything is scored or written (one line each)."""
    if request.baseline_name is not None and request.baseline is None:
        raise ValueError("--baseline-name needs --baseline (the RUN folder of the comparison model)")
    if request.checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {request.checkpoint!r}")
    if request.baseline_name is not None and request.baseline_name == request.name:
        raise ValueError(f"the model and its baseline need different names, both are {request.name!r}")
    if not (data / "dataset.json").is_file():
        raise FileNotFoundError(f"{data} holds no dataset.json: expected a dataset made by `ratmir prepare`")
    for run in (request.run, request.baseline):
        if run is None:
            continue
        missing = [f for f in ("config.yaml", "metrics.jsonl", "model.safetensors") if not (Path(run) / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{run} is not a finished RUN folder of `ratmir train` (missing {', '.join(missing)})")
        if request.checkpoint == "best" and not (Path(run) / "checkpoints" / "best.pt").is_file():
            raise FileNotFoundError(f"{run} holds no checkpoints/best.pt (a run without validation?): package its "
                                    "final weights with --checkpoint final")
        root = Path(str(yaml.safe_load((Path(run) / "config.yaml").read_text())["data"]["root"]))
        if root.is_dir() and root.resolve() != data.resolve():
            raise ValueError(f"{run} was trained on {root}, but --data is {data}: score a model on its own dataset's "
                             "test split")


def package_run(request: PackageRequest) -> list[PackagedModel]:
    """Score, write the card(s) and copy the weights into the package (see the module docstring)."""
    data = Path(request.data)
    _check_request(request, data)
    manifest = json.loads((data / "dataset.json").read_text())
    runs = {"model": (Path(request.run), request.name, request.config)}
    if request.baseline is not None:
        runs["compare"] = (Path(request.baseline), request.baseline_name or Path(request.baseline).name,
                           request.baseline_config)
    best = {}  # every run checked (and best.pt read, once) before anything is written
    for role, (run, _, _) in runs.items():
        task = read_metadata(run / "model.safetensors").get("task")
        if task != manifest["task"]:
            raise ValueError(f"{run} was trained for task {task!r}; the dataset {data} is {manifest['task']!r}")
        if request.checkpoint == "best":
            best[role] = _best_weights(run)
    facts: dict[str, dict[str, Any]] = {}
    for role, (run, label, config_path) in runs.items():
        # "best": the validation-best weights become RUN/model-best.safetensors (atomically), with their iteration
        weights = (save_pretrained(best[role][0], run / "model-best.safetensors", metadata=best[role][1])
                   if role in best else run / "model.safetensors")
        meta = read_metadata(weights)
        curve, seconds = validation_curve(run / "metrics.jsonl")
        facts[role] = {"weights": weights, "meta": meta, "config": yaml.safe_load((run / "config.yaml").read_text()),
                       "scores": read_scores(_evaluate(run, weights, data=data, label=label, progress=request.progress)),
                       "curve": curve, "seconds": seconds, "label": label,
                       "retrain": (f"ratmir prepare {manifest['task']} --out DATASET && ratmir train {config_path} "
                                   f"--out RUN --set data.root=DATASET") if config_path else "see the settings below"}
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
                           size_bytes=mine["weights"].stat().st_size, parameters=stored_values(mine["weights"]),
                           resamples=request.resamples, machine=request.machine,
                           compare_budget=_budget(facts[other]) if other in facts else "")
        main = MAIN_CONVENTION[manifest["task"]]
        summary = {"test": {"convention": main, "images": len(scores[("model", main)]),
                            "psnr": mean_std([v["psnr"] for v in scores[("model", main)].values()])["mean"],
                            "input_psnr": mean_std([v["psnr"] for v in scores[("input", main)].values()])["mean"]},
                   "iterations": int(mine["config"]["train"]["iterations"]), "seconds": round(mine["seconds"], 1),
                   "weights_iteration": int(mine["meta"].get("iteration", mine["config"]["train"]["iterations"])),
                   # what the pretrained demo prepares its test split with (the same images as in training's dataset)
                   "dataset": {**{k: manifest.get(k) for k in PREPARE_SETTINGS},
                               "regions_window": (manifest.get("regions") or {}).get("window")}}
        entries.append(add_packaged_model(mine["weights"], name=name, card=card, summary=summary,
                                          folder=request.folder))
    return entries


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def _first(count: int | None) -> str:
    return "all" if count is None else f"the first {count}"


def _budget(facts: dict[str, Any]) -> str:
    return f"{facts['config']['train']['iterations']} iterations in {_minutes(facts['seconds'])}"
