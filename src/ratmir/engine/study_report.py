"""The report of a finished study: per method mean ± std over seeds and over images, paired
differences against the reference method (bootstrap CI, Wilcoxon p; :mod:`ratmir.engine.stats`),
the same for each test-time region source against the dataset's own maps, a figure of the
differences with their intervals and comparison figures of the first test images.

Writes OUT/report/: ``report.md``, ``summary.csv``, ``paired.csv``, ``differences.png`` and
``figures/<image>.png``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..models.layer_scales import SCALE_NAMES, kind_means
from .evaluate import write_csv
from .region_sources import STORED
from .stats import PairedComparison, format_mean_std, markdown_table, mean_std, nonfinite_flag, paired_comparison
from .study_layout import evaluation_dir, run_dir, train_record, unit_name
from .study_records import setting_differences
from .study_spec import StudySpec

INPUT = "input (LQ)"
METRICS = ("psnr", "ssim")

Scores = dict[tuple[str, str, str, str], dict[int, dict[str, float]]]  # (method, source, conv, metric) -> seed -> image


def load_scores(spec: StudySpec, out: Path) -> Scores:
    """Per-image scores of every unit and region source (the LQ input once, from the reference)."""
    scores: Scores = {}
    for e in spec.experiments:
        for seed in spec.seeds:
            for source in e.region_sources:
                with open(evaluation_dir(out, e.name, seed, source.name) / "per_image.csv", newline="") as f:
                    for row in csv.DictReader(f):
                        method = e.name
                        if row["method"] == "input":
                            if e.name != spec.reference or source.name != STORED:
                                continue
                            method = INPUT
                        for metric in METRICS:
                            key = (method, source.name, row["convention"], metric)
                            scores.setdefault(key, {}).setdefault(seed, {})[row["name"]] = float(row[metric])
    return scores


def _matrix(per_seed: dict[int, dict[str, float]], seeds: tuple[int, ...], images: list[str]) -> np.ndarray:
    return np.array([[per_seed[s][i] for i in images] for s in seeds], dtype=np.float64)


def _summary_rows(scores: Scores, seeds: tuple[int, ...], images: list[str]) -> list[dict[str, Any]]:
    rows = []
    order = {m: i for i, m in enumerate(dict.fromkeys(m for m, _, _, _ in scores if m != INPUT))}
    keys = sorted(dict.fromkeys((m, s, c) for m, s, c, _ in scores), key=lambda k: order.get(k[0], len(order)))
    for method, source, conv in keys:
        row: dict[str, Any] = {"method": method, "region_source": source, "convention": conv,
                               "seeds": len(seeds), "images": len(images)}
        for metric in METRICS:
            a = _matrix(scores[(method, source, conv, metric)], seeds, images)
            finite = np.where(np.isfinite(a), a, np.nan)
            overall = mean_std(a.ravel())
            row[f"{metric}_mean"], row[f"{metric}_nonfinite"] = overall["mean"], overall["nonfinite"]
            row[f"{metric}_std_seeds"] = mean_std(np.nanmean(finite, axis=1))["std"]
            row[f"{metric}_std_images"] = mean_std(np.nanmean(finite, axis=0))["std"]
        rows.append(row)
    return rows


def _paired(spec: StudySpec, scores: Scores, images: list[str]) -> list[tuple[str, str, PairedComparison]]:
    """(kind, convention, comparison) for methods vs the reference and sources vs the dataset's maps."""
    out = []
    convs = list(dict.fromkeys(c for _, _, c, _ in scores))
    methods = [e.name for e in spec.experiments if e.name != spec.reference] + [INPUT]
    for conv in convs:
        for metric in METRICS:
            ref = _matrix(scores[(spec.reference, STORED, conv, metric)], spec.seeds, images)
            for m in methods:
                a = _matrix(scores[(m, STORED, conv, metric)], spec.seeds, images)
                out.append(("method", conv, paired_comparison(
                    a, ref, method=m, reference=spec.reference, metric=metric, resamples=spec.resamples,
                    level=spec.level, seed=spec.bootstrap_seed)))
            for e in spec.experiments:
                base = _matrix(scores[(e.name, STORED, conv, metric)], spec.seeds, images)
                for source in e.region_sources:
                    if source.name == STORED:
                        continue
                    a = _matrix(scores[(e.name, source.name, conv, metric)], spec.seeds, images)
                    out.append(("region_source", conv, paired_comparison(
                        a, base, method=f"{e.name} @ {source.name}", reference=f"{e.name} @ {STORED}",
                        metric=metric, resamples=spec.resamples, level=spec.level, seed=spec.bootstrap_seed)))
    return out


def _delta(c: PairedComparison, digits: int) -> str:
    return f"{c.mean_diff:+.{digits}f} [{c.ci_low:+.{digits}f}, {c.ci_high:+.{digits}f}]"


def _paired_table(items: list[PairedComparison]) -> list[str]:
    by = {(c.method, c.metric): c for c in items}
    rows = []
    for method in dict.fromkeys(c.method for c in items):
        p, s = by[(method, "psnr")], by[(method, "ssim")]
        rows.append([f"{method} − {p.reference}", _delta(p, 3), f"{p.p_value:.3g}",
                     f"{p.images_better}/{p.n_images}", f"{p.seeds_better}/{p.n_seeds}", p.verdict, _delta(s, 4),
                     f"{s.p_value:.3g}"])
    level = f"{items[0].level:.0%}"
    return markdown_table(["comparison", f"Δ PSNR dB [{level} CI]", "p (Wilcoxon)", "images better",
                           "seeds better", "PSNR CI says", f"Δ SSIM [{level} CI]", "p (Wilcoxon)"], rows)


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies under it (a report committed with the
    study then names no machine's folders), else absolute."""
    path = Path(path).resolve()
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def write_study_report(spec: StudySpec, *, out: str | Path, device: str = "cpu") -> Path:
    """Write OUT/report/ from the finished units; returns the path of ``report.md``."""
    out = Path(out)
    folder = out / "report"
    folder.mkdir(parents=True, exist_ok=True)
    scores = load_scores(spec, out)
    first = scores[next(iter(scores))]
    images = sorted(set.intersection(*(set(per) for v in scores.values() for per in v.values())))
    if not images:
        raise ValueError(f"the study in {out} has no test image scored by every unit")
    summary = _summary_rows(scores, spec.seeds, images)
    paired = _paired(spec, scores, images)
    write_csv(folder / "summary.csv", summary)
    write_csv(folder / "paired.csv", [{"kind": k, "convention": conv, **c.as_row()} for k, conv, c in paired])
    convs = list(dict.fromkeys(r["convention"] for r in summary))
    conv = spec.convention or convs[0]
    if conv not in convs:
        raise ValueError(f"report.convention must be one of {convs}, got {conv!r}")
    seconds = _compute_seconds(spec, out)
    lines = [f"# Study: {spec.name}", "",
             f"Spec `{spec.path.name}`; {len(spec.experiments)} experiments × seeds {list(spec.seeds)}; "
             f"{len(images)} {spec.split} images (of {len(next(iter(first.values())))} per unit); metric convention "
             f"`{conv}` (all conventions in the CSV files). Compute: {seconds / 60:.1f} min of training and "
             f"evaluation in total. Command: `ratmir study {_shown(spec.path)} --out {_shown(out)}`.", "",
             "Mean over seeds and images; ± the std of the per-seed means (seeds) and of the per-image means over "
             "seeds (images).", ""]
    rows = []
    for r in summary:
        if r["convention"] != conv or r["region_source"] != STORED:
            continue
        psnr, ssim = nonfinite_flag(r["psnr_nonfinite"]), nonfinite_flag(r["ssim_nonfinite"])
        rows.append([r["method"], format_mean_std(r["psnr_mean"], r["psnr_std_seeds"], digits=3) + psnr,
                     format_mean_std(r["psnr_mean"], r["psnr_std_images"]) + psnr,
                     format_mean_std(r["ssim_mean"], r["ssim_std_seeds"], digits=4) + ssim,
                     format_mean_std(r["ssim_mean"], r["ssim_std_images"], digits=4) + ssim])
    lines += markdown_table(["method", "PSNR dB ± seeds", "PSNR dB ± images", "SSIM ± seeds", "SSIM ± images"],
                            rows)
    if any(r["psnr_nonfinite"] or r["ssim_nonfinite"] for r in summary):
        lines += ["", "Scores marked (k non-finite) were NaN or infinite (e.g. PSNR of an output identical to its "
                  "reference): not in mean ± std, and their images are left out of the paired comparisons."]
    methods = [c for k, cv, c in paired if k == "method" and cv == conv]
    sources = [c for k, cv, c in paired if k == "region_source" and cv == conv]
    note = (f"Paired on the same image and seed; interval: percentile bootstrap over seeds and images "
            f"({spec.resamples} resamples, seed {spec.bootstrap_seed}); p: two-sided Wilcoxon signed-rank test "
            "over images of the seed-averaged differences (scipy.stats.wilcoxon). \"CI says\": higher / lower "
            "when the interval excludes 0, unresolved otherwise.")
    lines += ["", f"## Differences against {spec.reference}", "", note, "", *_paired_table(methods)]
    if sources:
        lines += ["", "## Test-time region sources (same trained models, other label maps)", "",
                  *_paired_table(sources)]
    _plot_differences(folder / "differences.png", methods, sources, conv=conv)
    lines += ["", "![differences](differences.png)", ""]
    lines += ["## Settings per arm (seed " + str(spec.seeds[0]) + ", from units/)", "", *_settings_table(spec, out), "",
              *_differences_lines(spec, out), ""]
    scales = _scales_table(spec, out)
    if scales:
        lines += ["## Layer scales after training", "", "Mean |value| per kind, averaged over stages, mean ± std over "
                  "seeds: λ_ra scales the first attention of each RAT layer (R-MSA, or W-MSA/MSA in the ablations), "
                  "λ_wa the W-MSA; β, γ the NAFBlocks. All start at 0.", "", *scales, ""]
    figures = _example_figures(spec, out, folder / "figures", images=images[: spec.figures], device=device)
    if spec.figures and not figures:
        lines += ["Figures need the trained weights (runs/, not committed) and the datasets: rerun the study "
                  "command where they are.", ""]
    lines += [f"![{p.stem}](figures/{p.name})" for p in figures]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _differences_lines(spec: StudySpec, out: Path) -> list[str]:
    """Whether every unit trained with what the spec asks (the table above shows one seed)."""
    differs = {unit_name(e.name, s): d for e, s in spec.units() if (d := setting_differences(spec, out, e, s))}
    if not differs:
        return ["Every unit's recorded settings (study_train.json) equal what the spec trains at its seed "
                "(the dataset folder compared by name)."]
    return ["**Units whose recorded settings differ from what the spec trains** (copied from another study, or "
            "trained before a default changed):", "",
            *[f"- {unit}: {'; '.join(d)}" for unit, d in differs.items()]]


def _settings_table(spec: StudySpec, out: Path) -> list[str]:
    """Every optimiser, init, loss, data and budget setting each arm trained with (its resolved config)."""
    rows = []
    for e in spec.experiments:
        config = json.loads(train_record(out, e.name, spec.seeds[0]).read_text()).get("config")
        if not config:
            continue
        m, o, lo, d, t = (config[k] for k in ("model", "optim", "loss", "data", "train"))
        options = ", ".join(f"{k}: {v}" for k, v in m["options"].items())
        loss = lo["name"] + (f" γ {lo['gamma']:g}" if lo["name"] == "focal_region" else "")
        rows.append([e.name, f"{m['name']} {{{options}}}", f"{o['lr']:g} → {o['lr_min']:g} cosine, warm-up "
                     f"{o.get('warmup', 0)}", f"{o['betas'][0]:g}, {o['betas'][1]:g}", f"{o['weight_decay']:g}",
                     str(o["grad_clip"]), loss, f"{t['iterations']} it., patch {d['patch_size']}, batch "
                     f"{d['batch_size']}", f"{t['ema']}, {t['amp']}"])
    return markdown_table(["arm", "model {options}", "lr", "Adam betas", "weight decay", "grad clip", "loss",
                           "budget", "EMA, amp"], rows) if rows else []


def _scales_table(spec: StudySpec, out: Path) -> list[str]:
    rows = []
    for e in spec.experiments:
        per_seed = [kind_means(json.loads(train_record(out, e.name, s).read_text()).get("layer_scales") or {})
                    for s in spec.seeds]
        cells = []
        for kind in SCALE_NAMES:
            values = [means[kind] for means in per_seed if kind in means]
            cells.append(format_mean_std(float(np.mean(values)), float(np.std(values)), digits=4) if values else "–")
        if any(c != "–" for c in cells):
            rows.append([e.name, *cells])
    return markdown_table(["arm", "λ_ra", "λ_wa", "β", "γ"], rows) if rows else []


def _compute_seconds(spec: StudySpec, out: Path) -> float:
    total = 0.0
    for e, seed in spec.units():
        total += json.loads(train_record(out, e.name, seed).read_text())["seconds"]
        for s in e.region_sources:
            total += json.loads((evaluation_dir(out, e.name, seed, s.name) / "summary.json").read_text()).get(
                "seconds", 0.0)
    return total


def _plot_differences(path: Path, methods: list[PairedComparison], sources: list[PairedComparison], *,
                      conv: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"vs {methods[0].reference}", methods)] + ([("region sources vs dataset maps", sources)]
                                                          if sources else [])
    rows = max(len([c for c in p if c.metric == "psnr"]) for _, p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), max(2.4, 1.0 + 0.45 * rows)), squeeze=False)
    for ax, (title, items) in zip(axes[0], panels):
        items = [c for c in items if c.metric == "psnr"]
        y = np.arange(len(items))
        mean = np.array([c.mean_diff for c in items])
        err = np.array([[c.mean_diff - c.ci_low for c in items], [c.ci_high - c.mean_diff for c in items]])
        ax.errorbar(mean, y, xerr=err, fmt="o", capsize=3)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_yticks(y, [c.method for c in items])
        ax.invert_yaxis()
        ax.set_xlabel(f"Δ PSNR (dB, {conv}) with {items[0].level:.0%} CI")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _example_figures(spec: StudySpec, out: Path, folder: Path, *, images: list[str], device: str) -> list[Path]:
    """LQ | each method (first seed, dataset regions) | HQ for the first test images."""
    import torch

    from ..data import PairedDataset
    from ..models import load_pretrained
    from ..restore import restore_image
    from .figures import comparison_figure

    if not images:
        return []
    seed = spec.seeds[0]
    runs = {e.name: run_dir(out, e.name, seed) for e in spec.experiments}
    roots = {e.name: json.loads(train_record(out, e.name, seed).read_text())["config"]["data"]["root"]
             for e in spec.experiments}
    if not all((run / "model.safetensors").is_file() for run in runs.values()) or not all(
            Path(root).is_dir() for root in roots.values()):
        return sorted(folder.glob("*.png"))  # weights or data not on this machine: the figures made before
    sets = {name: PairedDataset(root, spec.split) for name, root in roots.items()}
    models = {name: load_pretrained(run / "model.safetensors", map_location=device).eval()
              for name, run in runs.items()}
    reference = sets[spec.reference]
    paths = []
    for image in images:
        item = reference[reference.names.index(image)]
        outputs = {}
        for name, model in models.items():
            own = sets[name][sets[name].names.index(image)]
            with torch.no_grad():
                outputs[name] = restore_image(model, own["lq"][None].to(device), own["regions"][None].to(device),
                                              tile=spec.tile, overlap=spec.overlap).float().cpu()
        paths.append(comparison_figure(folder / f"{image}.png", lq=item["lq"][None], outputs=outputs,
                                       hq=item["hq"][None], task=reference.manifest["task"],
                                       norm=reference.normalisation, title=f"{image} (seed {seed})"))
    return paths
