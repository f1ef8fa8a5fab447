"""The demo's pages: a task's ``report.md`` and the overview ``index.md``, both rendered from
the task's ``result.json`` (written by :mod:`ratmir.demo`), so the two never disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conventions import MAIN_CONVENTION
from .engine.stats import format_mean_std, markdown_table, nonfinite_flag


def task_result(*, settings: dict[str, Any], manifest: dict[str, Any], data: Path, rows: list[dict[str, Any]],
                baseline: str, timings: list[tuple[str, float, str]], figures: list[Path],
                restored: list[Path]) -> dict[str, Any]:
    """The numbers of one finished task demo (JSON-ready); paths relative to the task's folder."""
    return {
        "settings": settings, "task": settings["task"], "baseline": baseline,
        "dataset": {"folder": str(data),
                    # every split the dataset has, in its order (a 'val' split shows up by itself)
                    "splits": {name: len(names) for name, names in manifest["splits"].items()},
                    "sources": sorted(str(s.get("id", "?")) for s in manifest.get("sources", [])
                                      if s.get("status") == "used"),
                    "missing_sources": [str(m) for m in manifest.get("missing_sources", [])]},
        "main_convention": MAIN_CONVENTION[settings["task"]], "rows": rows,
        "verdict": verdict(rows, task=settings["task"], baseline=baseline),
        "rat_vs_input": _gain(rows, task=settings["task"]),
        "timings": [{"stage": stage, "seconds": seconds, "note": note} for stage, seconds, note in timings],
        "figures": [p.as_posix() for p in figures], "restored": [p.as_posix() for p in restored],
    }


def _gain(rows: list[dict[str, Any]], *, task: str) -> dict[str, float] | None:
    """RAT minus the LQ input under the task's main convention (PSNR dB, SSIM)."""
    by = {(r["method"], r["convention"]): r for r in rows}
    rat, lq = by.get(("rat", MAIN_CONVENTION[task])), by.get(("input (LQ)", MAIN_CONVENTION[task]))
    if not (rat and lq):
        return None
    return {"psnr": rat["psnr_mean"] - lq["psnr_mean"], "ssim": rat["ssim_mean"] - lq["ssim_mean"]}


def verdict(rows: list[dict[str, Any]], *, task: str, baseline: str) -> list[str]:
    """Plain sentences: does RAT beat the LQ input, and does it beat the baseline?"""
    conv = MAIN_CONVENTION[task]
    by = {(r["method"], r["convention"]): r for r in rows}
    rat, base = by.get(("rat", conv)), by.get((baseline, conv))
    lines = []
    change = _gain(rows, task=task)
    if change:
        gain, ssim_gain = change["psnr"], change["ssim"]
        text = ("RAT improves over the input." if gain > 0 and ssim_gain >= 0 else
                "**RAT does not improve over the input.**" if gain <= 0 and ssim_gain <= 0 else
                "**mixed: RAT improves one metric and worsens the other.**")
        lines.append(f"RAT vs the LQ input ({conv}): {gain:+.2f} dB PSNR, {ssim_gain:+.4f} SSIM — {text}")
    if rat and base:
        diff = base["psnr_mean"] - rat["psnr_mean"]
        lines.append(f"{baseline} vs RAT ({conv}): {diff:+.2f} dB PSNR — "
                     + (f"**the baseline ({baseline}) wins at this budget.**" if diff > 0 else "RAT wins."))
    return lines


def _splits(result: dict[str, Any]) -> str:
    return " / ".join(f"{n} {name}" for name, n in result["dataset"]["splits"].items())


def _total(result: dict[str, Any]) -> float:
    return sum(t["seconds"] for t in result["timings"])


def _sections(result: dict[str, Any], *, level: int, prefix: str, restored: bool) -> list[str]:
    """Table, verdict, figures (links under ``prefix``), [restored files,] time."""
    h = "#" * level
    lines = [f"{h} Results (test split, full images; PSNR dB / SSIM, mean ± std)", ""]
    lines += markdown_table(["method", "convention", "PSNR", "SSIM"], [  # (k non-finite): not in mean ± std
        [r["method"], r["convention"],
         format_mean_std(r["psnr_mean"], r["psnr_std"]) + nonfinite_flag(r.get("psnr_nonfinite", "")),
         format_mean_std(r["ssim_mean"], r["ssim_std"], digits=4) + nonfinite_flag(r.get("ssim_nonfinite", ""))]
        for r in result["rows"]])
    lines += ["", f"{h} Verdict", ""] + [f"- {line}" for line in result["verdict"]]
    lines += ["", f"{h} Figures", ""] + [f"![{Path(p).stem}]({prefix}{p})" for p in result["figures"]]
    if restored:
        lines += ["", f"{h} Held-out images restored with `ratmir restore`", ""]
        lines += [f"- `{p}`" for p in result["restored"]]
    lines += ["", f"{h} Time on this machine", "", "| stage | seconds | note |", "|---|---|---|"]
    lines += [f"| {t['stage']} | {t['seconds']:.0f} | {t['note']} |" for t in result["timings"]]
    lines.append(f"| total | {_total(result):.0f} | |")
    return lines


def render_report(result: dict[str, Any]) -> str:
    """A task's ``report.md``."""
    s, d, baseline = result["settings"], result["dataset"], result["baseline"]
    noise = (f" CT noise: an acquisition with {s['ct_noise_hu']} HU full-dose noise is emulated "
             "(`ratmir prepare --ct-noise-hu`)." if s["task"] == "ct" and s["ct_noise_hu"] else "")
    lines = [f"# ratmir demo: {s['task']}", "",
             f"Dataset `{d['folder']}`: {_splits(result)} images from {', '.join(d['sources']) or 'user data'}; "
             f"missing sources: {', '.join(d['missing_sources']) or 'none'} "
             f"(details in `{d['folder']}/dataset.json`).{noise}", "",
             _training(s, baseline), ""]
    lines += _sections(result, level=2, prefix="", restored=True)
    return "\n".join(lines) + "\n"


def _training(s: dict[str, Any], baseline: str) -> str:
    if s.get("pretrained"):
        m = s["models"]
        return (f"No training here: the packaged models `{m['rat']['name']}` (RAT, {m['rat']['iterations']} iterations) "
                f"and `{m[baseline]['name']}` ({baseline}, {m[baseline]['iterations']} iterations), their SHA-256 "
                f"checked; how they were trained and scored: `ratmir models show {m['rat']['name']}`. "
                f"`make demo TASK={s['task']}` trains both from scratch. Seed {s['seed']}, ratmir {s['ratmir_version']}.")
    return (f"Training: {s['iterations']} iterations, patches {s['patch_size']}, batch {s['batch_size']}, "
            f"Adam lr {s['lr']} cosine to 1e-6, focal region loss (gamma 1e-3); "
            f"models: RAT {s['models']['rat']}, {baseline} {s['models'][baseline]}. A demo budget, far from the "
            f"paper's 200K iterations. Seed {s['seed']}, ratmir {s['ratmir_version']}.")


def render_index(results: dict[str, dict[str, Any] | None]) -> str:
    """``index.md``: every task's table, verdict, split sizes, time and figures on one page
    (links relative to the page); tasks without a finished demo are named with the command."""
    pretrained = any(r is not None and r["settings"].get("pretrained") for r in results.values())
    command = "ratmir demo --pretrained --task {task}" if pretrained else "make demo TASK={task}"
    lines = ["# ratmir demo: all tasks" + (" (packaged models, no training)" if pretrained else ""), "",
             "One folder per task beside this page, each with its full `report.md`; "
             f"`{command.format(task='all')}` runs the missing ones and resumes unfinished ones.", "",
             "| task | split sizes | iterations | RAT vs input | time (s) |", "|---|---|---|---|---|"]
    for task, result in results.items():
        if result is None:
            lines.append(f"| {task} | not run yet (`{command.format(task=task)}`) | | | |")
            continue
        g = result.get("rat_vs_input")
        change = f"{g['psnr']:+.2f} dB PSNR, {g['ssim']:+.4f} SSIM" if g else "not measured"
        lines.append(f"| [{task}]({task}/report.md) | {_splits(result)} | {result['settings']['iterations']} | "
                     f"{change} | {_total(result):.0f} |")
    for task, result in results.items():
        if result is None:
            continue
        d = result["dataset"]
        lines += ["", f"## {task}: [report]({task}/report.md)", "",
                  f"Split sizes: {_splits(result)} images (`{task}/{d['folder']}`, "
                  f"{', '.join(d['sources']) or 'user data'}); RAT vs {result['baseline']}, "
                  f"{result['settings']['iterations']} iterations.", ""]
        lines += _sections(result, level=3, prefix=f"{task}/", restored=False)
    return "\n".join(lines) + "\n"
