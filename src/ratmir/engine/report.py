"""``ratmir report``: a table like the paper's (mean ± std per method and task) from evaluations.

Inputs are evaluation folders (with ``summary.json``), RUN folders (with
``evaluation/summary.json``) or the JSON files themselves. Writes ``report.md``, ``report.csv``
and ``psnr.png`` (bar plot with std error bars) into OUT. The LQ input of each dataset appears
once, as ``input (LQ)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import OutputExistsError
from .evaluate import write_csv
from .stats import format_mean_std, markdown_table, nonfinite_flag


def find_summary(path: str | os.PathLike) -> Path:
    path = Path(path)
    for candidate in (path, path / "summary.json", path / "evaluation" / "summary.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no evaluation summary at {path} (run `ratmir evaluate` first)")


def collect(paths: list[str | os.PathLike]) -> list[dict[str, Any]]:
    """Rows {task, method, convention, psnr_mean, psnr_std, ssim_mean, ssim_std, n} of all inputs."""
    rows: list[dict[str, Any]] = []
    inputs_seen: set[tuple[str, str, str]] = set()
    for path in paths:
        summary = json.loads(find_summary(path).read_text())
        for method, convs in summary["results"].items():
            name = summary["label"] if method == "model" else "input (LQ)"
            key = (summary["task"], summary["dataset"], summary["split"])
            if method == "input":
                if key in inputs_seen:
                    continue
                inputs_seen.add(key)
            for conv, metrics in convs.items():
                rows.append({"task": summary["task"], "method": name, "convention": conv,
                             "psnr_mean": metrics["psnr"]["mean"], "psnr_std": metrics["psnr"]["std"],
                             "ssim_mean": metrics["ssim"]["mean"], "ssim_std": metrics["ssim"]["std"],
                             "n": metrics["psnr"]["n"],
                             # older summaries did not count them (and no count means unknown, not 0)
                             "psnr_nonfinite": metrics["psnr"].get("nonfinite", ""),
                             "ssim_nonfinite": metrics["ssim"].get("nonfinite", "")})
    if not rows:
        raise ValueError("no results to report")
    return rows


REPORT_FILES = ("report.md", "report.csv", "psnr.png")


def write_report(paths: list[str | os.PathLike], *, out: str | os.PathLike, title: str = "Results",
                 overwrite: bool = False) -> Path:
    """Write the report files into ``out``; an earlier report there is replaced only with
    ``overwrite`` (other files in ``out`` are never touched)."""
    rows = collect(paths)
    out = Path(out)
    existing = [name for name in REPORT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{out} already holds a report ({', '.join(existing)}); pass --overwrite to "
                                "replace it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "report.csv", rows)
    lines = [f"# {title}", ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        sub = [r for r in rows if r["task"] == task]
        convs = list(dict.fromkeys(r["convention"] for r in sub))
        methods = list(dict.fromkeys(r["method"] for r in sub))
        n = max(r["n"] for r in sub)
        table = []
        for m in methods:
            cells = [m]
            for c in convs:
                r = next((r for r in sub if r["method"] == m and r["convention"] == c), None)
                cells += ([format_mean_std(r["psnr_mean"], r["psnr_std"]) + nonfinite_flag(r["psnr_nonfinite"]),
                           format_mean_std(r["ssim_mean"], r["ssim_std"], digits=4)
                           + nonfinite_flag(r["ssim_nonfinite"])]
                          if r else ["–", "–"])
            table.append(cells)
        header = ["method", *(f"{c} {metric}" for c in convs for metric in ("PSNR", "SSIM"))]
        lines += [f"## {task} ({n} test images; PSNR dB / SSIM, mean ± std)", "", *markdown_table(header, table), ""]
        bad = sum(int(r[k] or 0) for r in sub for k in ("psnr_nonfinite", "ssim_nonfinite"))
        if bad:
            lines += [f"{bad} score(s) marked (k non-finite) were NaN or infinite (e.g. PSNR of an output "
                      "identical to its reference); they count in the number of images but not in mean ± std.", ""]
    lines.append("![PSNR](psnr.png)")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    _plot(rows, out / "psnr.png")
    return path


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = list(dict.fromkeys((r["task"], r["convention"]) for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 3.5))
    for j, m in enumerate(methods):
        means, stds = [], []
        for task, conv in groups:
            r = next((r for r in rows if (r["task"], r["convention"], r["method"]) == (task, conv, m)), None)
            means.append(r["psnr_mean"] if r else np.nan)
            stds.append(r["psnr_std"] if r else 0.0)
        ax.bar(np.arange(len(groups)) + j * width, means, width, yerr=stds, label=m, capsize=2)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{t}\n{c}" for t, c in groups])
    ax.set_ylabel("PSNR (dB)")
    finite = [r["psnr_mean"] for r in rows if np.isfinite(r["psnr_mean"])]
    if finite:
        ax.set_ylim(min(finite) - 3, max(finite) + 2)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
