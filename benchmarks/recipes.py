"""Short-budget training recipes, chosen by measurement: gain over the identity per recipe x arm x seed.

Trains the demo-size models (RAT width 16, 6 RAT layers; its W-MSA and global-MSA variants;
RED-CNN 48 features; DnCNN 32x10) on the CT set for a short budget with each candidate recipe
and scores the test slices under ``ct_window``: the gain over the identity is the model's PSNR
minus the input's, per image, on the same slices for every unit. Every setting a unit trained
with (optimiser, init, schedule, data, budget) is written in its result file; nothing comes from
a config file.

    ratmir prepare ct --out data/ct-felz --backend felzenszwalb
    python benchmarks/recipes.py data/ct-felz --arms wmsa --recipes study beta09 beta09_randout beta09_warmup \\
        --seeds 0 1 2 3 4 --jobs 2                 # screen recipes on the cheapest arm
    python benchmarks/recipes.py data/ct-felz --arms rat msa redcnn dncnn --recipes beta09_warmup --jobs 2
    python benchmarks/recipes.py data/ct-felz --arms rat --recipes beta09_warmup --iterations 750 --jobs 2
    python benchmarks/recipes.py data/ct-felz --report-only   # the tables from the committed results

Each finished unit is one small JSON file in ``benchmarks/results/recipes/`` (committed), so a
rerun, on this machine or a new one, skips finished units; weights stay in ``--work`` (ignored).
One torch thread per unit, ``--jobs`` units at a time; an interrupted unit resumes from its last
checkpoint (every 100 iterations) when rerun.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "recipes"

# checkpointing off: at patch 96 the small RAT needs little memory, and recomputing costs ~1.25x here
SMALL_RAT = {"width": 16, "middle_layers": 6, "layers_per_group": 3, "checkpointing": "none"}
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "rat": ("rat", {**SMALL_RAT}),
    "wmsa": ("rat", {**SMALL_RAT, "attention": "window"}),
    "msa": ("rat", {**SMALL_RAT, "attention": "global"}),
    "redcnn": ("redcnn", {"features": 48}),
    "dncnn": ("dncnn", {"features": 32, "depth": 10}),
}
# Each recipe states every optimiser and init setting; "identity_init" applies to RAT-family arms.
RECIPES: dict[str, dict[str, Any]] = {
    "study": {"betas": [0.5, 0.999], "lr": 1e-3, "lr_min": 1e-6, "warmup": 0, "identity_init": True},
    "beta09": {"betas": [0.9, 0.999], "lr": 1e-3, "lr_min": 1e-6, "warmup": 0, "identity_init": True},
    "beta09_randout": {"betas": [0.9, 0.999], "lr": 1e-3, "lr_min": 1e-6, "warmup": 0, "identity_init": False},
    "beta09_warmup": {"betas": [0.9, 0.999], "lr": 1e-3, "lr_min": 1e-6, "warmup": 60, "identity_init": True},
    "beta09_lr5e-4": {"betas": [0.9, 0.999], "lr": 5e-4, "lr_min": 1e-6, "warmup": 60, "identity_init": True},
}
COMMON = {"patch_size": 96, "batch_size": 4, "loss": {"name": "focal_region", "gamma": 1e-3, "delta": 1.0,
                                                      "normalize": "batch"},
          "weight_decay": 0.0, "grad_clip": None, "ema": None, "augment": True, "val_max_images": 1}


def unit_name(*, recipe: str, arm: str, seed: int, iterations: int) -> str:
    return f"{recipe}__{arm}__seed{seed}__it{iterations}"


def _name_of(settings: dict[str, Any]) -> str:
    return unit_name(**{k: settings[k] for k in ("recipe", "arm", "seed", "iterations")})


def unit_settings(*, recipe: str, arm: str, seed: int, iterations: int) -> dict[str, Any]:
    """Every setting the unit trains with, as written into its result file."""
    name, options = ARMS[arm]
    r = RECIPES[recipe]
    options = dict(options)
    if name == "rat":
        options["identity_init"] = r["identity_init"]
    return {"recipe": recipe, "arm": arm, "seed": seed, "iterations": iterations,
            "model": {"name": name, "options": options},
            "optim": {k: r[k] for k in ("lr", "lr_min", "betas", "warmup")} | {
                "weight_decay": COMMON["weight_decay"], "grad_clip": COMMON["grad_clip"]},
            "loss": dict(COMMON["loss"]),
            "data": {k: COMMON[k] for k in ("patch_size", "batch_size", "augment", "val_max_images")},
            "train": {"ema": COMMON["ema"], "amp": "none", "val_every": max(1, iterations // 4)}}


def _config(settings: dict[str, Any], data: str):
    from ratmir.engine.config import (DataConfig, ExperimentConfig, LossConfig, ModelConfig, OptimConfig,
                                      TrainConfig)

    s = settings
    return ExperimentConfig(
        task="ct", name=_name_of(s),
        model=ModelConfig(name=s["model"]["name"], options=dict(s["model"]["options"])),
        data=DataConfig(root=data, **s["data"]), loss=LossConfig(**s["loss"]),
        optim=OptimConfig(lr=s["optim"]["lr"], lr_min=s["optim"]["lr_min"], betas=tuple(s["optim"]["betas"]),
                          warmup=s["optim"]["warmup"], weight_decay=s["optim"]["weight_decay"],
                          grad_clip=s["optim"]["grad_clip"]),
        train=TrainConfig(iterations=s["iterations"], seed=s["seed"], log_every=25, val_every=s["train"]["val_every"],
                          checkpoint_every=100, amp=s["train"]["amp"], ema=s["train"]["ema"], device="cpu"))


def run_unit(settings: dict[str, Any], *, data: str, work: str, test_images: int) -> dict[str, Any]:
    """Train one unit and score it on the test slices (one torch thread)."""
    import torch

    torch.set_num_threads(1)
    from ratmir.conventions import score
    from ratmir.data import PairedDataset
    from ratmir.data.splits import evenly_spaced
    from ratmir.engine.trainer import train
    from ratmir.models.layer_scales import layer_scale_sizes

    config = _config(settings, data)
    run = Path(work) / config.name
    start = time.perf_counter()
    result = train(config, out=run, progress=False)
    seconds = time.perf_counter() - start
    from ratmir.models import load_pretrained

    model = load_pretrained(run / "model.safetensors").eval()
    test = PairedDataset(data, "test")
    norm = test.normalisation
    rows = []
    with torch.no_grad():
        for i in evenly_spaced(list(range(len(test))), limit=test_images):
            item = test[i]
            lq, hq = item["lq"][None], item["hq"][None]
            pred = model(lq, item["regions"][None]).clamp(0, 1)
            s_in = score(lq, hq, convention="ct_window", normalisation=norm)
            s_out = score(pred, hq, convention="ct_window", normalisation=norm)
            rows.append({"image": item["name"], "input_psnr": float(s_in["psnr"][0]), "psnr": float(s_out["psnr"][0]),
                         "ssim": float(s_out["ssim"][0])})
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["iteration"], r["val_gain_db"]) for r in records if "val_gain_db" in r]
    ratios = [(r["iteration"], r["loss_vs_identity"]) for r in records if "loss_vs_identity" in r]
    warned = any("warning" in r for r in records)
    gains = [r["psnr"] - r["input_psnr"] for r in rows]
    return {**settings, "gain_db": statistics.fmean(gains), "psnr": statistics.fmean(r["psnr"] for r in rows),
            "input_psnr": statistics.fmean(r["input_psnr"] for r in rows), "per_image": rows,
            "val_gain_curve": curve, "loss_vs_identity": ratios[:: max(1, len(ratios) // 8)] + ratios[-1:],
            "stall_warning": warned, "layer_scales": layer_scale_sizes(model), "train_seconds": round(seconds, 1),
            "best": result.best, "torch_threads": 1}


def _write(path: Path, record: dict[str, Any]) -> None:
    from ratmir._files import write_text_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(record, indent=1) + "\n")


def _scale_summary(*units: dict[str, float]) -> str:
    """Mean |value| of each layer-scale kind (over its stages), averaged over ``units`` (seeds)."""
    from ratmir.models.layer_scales import SCALE_NAMES, kind_means

    means = [kind_means(u) for u in units]
    return " ".join(f"{k}={statistics.fmean(m[k] for m in means if k in m):.3g}" for k in SCALE_NAMES
                    if any(k in m for m in means))


def report(results: list[dict[str, Any]]) -> str:
    """Per recipe x arm: gain per seed, mean, std, min; then the layer scales."""
    lines = ["| recipe | arm | it. | gain over the input per seed (ct_window dB) | mean | std | min | warned | "
             "layer scales (mean abs, mean over seeds) |", "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["recipe"], r["arm"], r["iterations"]), []).append(r)
    for (recipe, arm, its), units in sorted(groups.items()):
        units.sort(key=lambda u: u["seed"])
        gains = [u["gain_db"] for u in units]
        std = statistics.stdev(gains) if len(gains) > 1 else math.nan
        per_seed = ", ".join(f"s{u['seed']} {u['gain_db']:+.2f}" for u in units)
        lines.append(f"| {recipe} | {arm} | {its} | {per_seed} | {statistics.fmean(gains):+.2f} | {std:.2f} | "
                     f"{min(gains):+.2f} | {sum(u['stall_warning'] for u in units)}/{len(units)} | "
                     f"{_scale_summary(*(u['layer_scales'] for u in units))} |")
    return "\n".join(lines)


def paired(results: list[dict[str, Any]], *, reference: str = "beta09_warmup") -> str:
    """Per arm: each recipe minus ``reference``, paired on the seeds and test images both have
    (mean, percentile-bootstrap 95 % interval over seeds and images)."""
    import numpy as np

    from ratmir.engine.stats import bootstrap_mean_ci

    by_unit = {(r["recipe"], r["arm"], r["iterations"], r["seed"]): {i["image"]: i["psnr"] for i in r["per_image"]}
               for r in results}
    lines = [f"| arm | it. | recipe − {reference} | seeds | Δ dB [95 % CI] |", "|---|---|---|---|---|"]
    for recipe, arm, its in sorted({k[:3] for k in by_unit if k[0] != reference}):
        seeds = sorted(k[3] for k in by_unit if k[:3] == (recipe, arm, its) and (reference, arm, its, k[3]) in by_unit)
        if not seeds:
            continue
        images = sorted(set.intersection(*(set(by_unit[(recipe, arm, its, s)]) & set(by_unit[(reference, arm, its, s)])
                                           for s in seeds)))
        diffs = np.array([[by_unit[(recipe, arm, its, s)][i] - by_unit[(reference, arm, its, s)][i] for i in images]
                          for s in seeds])
        low, high = bootstrap_mean_ci(diffs, resamples=10_000, seed=0)
        lines.append(f"| {arm} | {its} | {recipe} | {len(seeds)} | {diffs.mean():+.2f} [{low:+.2f}, {high:+.2f}] |")
    return "\n".join(lines)


def load_results(folder: Path = RESULTS) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="a CT dataset from `ratmir prepare ct`")
    parser.add_argument("--arms", nargs="+", default=["wmsa"], choices=sorted(ARMS))
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=sorted(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--test-images", type=int, default=8, help="evenly spaced test slices scored per unit")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", default="runs/recipes", help="RUN folders (weights; not committed)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        if not args.data:
            parser.error("give the dataset folder (or --report-only)")
        data = str(Path(args.data).resolve())
        # seed-major: a run stopped early has the same seeds of every recipe and arm
        todo = [unit_settings(recipe=r, arm=a, seed=s, iterations=args.iterations)
                for s in args.seeds for r in args.recipes for a in args.arms]
        todo = [u for u in todo if not (args.results / f"{_name_of(u)}.json").is_file()]
        print(f"{len(todo)} unit(s) to run, {args.jobs} at a time", flush=True)
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_unit, u, data=data, work=args.work, test_images=args.test_images): u
                       for u in todo}
            for future in as_completed(futures):
                u = futures[future]
                name = _name_of(u)
                try:
                    record = future.result()
                except Exception as exc:  # noqa: BLE001 - one failed unit must not lose the others
                    print(f"FAILED {name}: {type(exc).__name__}: {exc}", flush=True)
                    continue
                _write(args.results / f"{name}.json", record)
                print(f"{name}: gain {record['gain_db']:+.2f} dB, layer scales "
                      f"{_scale_summary(record['layer_scales']) or '-'} ({record['train_seconds']:.0f} s)", flush=True)
    results = load_results(args.results)
    print(report(results))
    print()
    print(paired(results))


if __name__ == "__main__":
    main()
