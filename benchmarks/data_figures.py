"""Measure prepared datasets and draw one figure per task (docs/data.md).

    ratmir prepare ct --out data/ct          # likewise pet, pathology
    python benchmarks/data_figures.py --ct data/ct --pet data/pet --pathology data/pathology

Prints Markdown tables: images per split (and CT slices left out), LQ-vs-HQ PSNR/SSIM of the
test split under each of the task's evaluation conventions (``ratmir.conventions``; mean ± std
and median over images), for CT the noise std (HU) in the most uniform soft-tissue region at full
and quarter dose, for PET the count ratio; writes docs/figures/data_<task>.png (LQ, HQ, region
boundaries on the LQ image).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ratmir.conventions import TASK_CONVENTIONS, score
from ratmir.data import PairedDataset, read_manifest
from ratmir.data.ct_noise import most_uniform_roi
from ratmir.data.layout import pair_paths, read_image
from ratmir.tasks.base import Normalisation
from ratmir.regions import apply_window, boundary_overlay

DISPLAY = {"ct": (-160.0, 240.0), "pet": (0.0, 20.0), "pathology": (0.0, 255.0)}  # physical units


def lq_scores(root: Path, task: str, *, split: str = "test") -> dict[str, dict[str, list[float]]]:
    """Per convention of ``task``, the LQ-vs-HQ PSNR and SSIM of every image of ``split``."""
    dataset = PairedDataset(root, split, cache=False)
    normalisation = Normalisation.from_record(dataset.manifest["normalisation"])
    out = {c: {"psnr": [], "ssim": []} for c in TASK_CONVENTIONS[task]}
    for index in range(len(dataset)):  # indices past the end wrap around (epochs): no plain iteration
        item = dataset[index]
        for convention, values in out.items():
            s = score(item["lq"][None], item["hq"][None], convention=convention, normalisation=normalisation)
            values["psnr"].append(float(s["psnr"][0]))
            values["ssim"].append(float(s["ssim"][0]))
    return out


def summary(values: list[float], digits: int) -> str:
    """'mean ± std (median m)' over images."""
    v = np.asarray(values)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f} (median {np.median(v):.{digits}f})"


def measure(root: Path, task: str) -> dict:
    manifest = read_manifest(root)
    row = {"task": task, **{f"n_{s}": len(v) for s, v in manifest["splits"].items()}}
    left_out = manifest.get("left_out") or {}
    row["n_left_out"] = left_out.get("count", 0)
    row["scores"] = lq_scores(root, task)
    per_image = manifest["degradation"]["per_image"]
    if task == "ct":
        ratios, full, quarter, expected = [], [], [], []
        emulated = manifest.get("ct_noise_hu")
        for split, names in manifest["splits"].items():
            for name in names:
                p = pair_paths(root, split, name)
                hq, lq = read_image(p.hq), read_image(p.lq)
                roi = most_uniform_roi(hq)
                if roi is not None:
                    full.append(float(hq[roi].std()))
                    quarter.append(float(lq[roi].std()))
                    ratios.append(quarter[-1] / full[-1])
                    if emulated:  # the slice's own noise plus the extra variance of a 12 HU full dose at f
                        f = per_image[name]["dose_fraction"]
                        expected.append(float(np.sqrt(full[-1] ** 2 + (1 / f - 1) * emulated ** 2)))
        row["noise_full_hu"], row["noise_quarter_hu"] = float(np.median(full)), float(np.median(quarter))
        row["noise_ratio"] = float(np.median(ratios))
        row["noise_quarter_expected_hu"] = float(np.median(expected)) if expected else None
        row["emulated_hu"] = emulated
    if task == "pet":
        full = sum(r["full_dose_counts"] for r in per_image.values())
        low = sum(r["low_dose_counts"] for r in per_image.values())
        row["count_ratio"] = full / low
    return row


def figure(root: Path, task: str, out: Path) -> Path:
    manifest = read_manifest(root)
    name = manifest["splits"]["test"][len(manifest["splits"]["test"]) // 2]
    p = pair_paths(root, "test", name)
    from ratmir.regions import load_label_map

    lq, hq = read_image(p.lq), read_image(p.hq)
    labels = load_label_map(p.regions, expected_shape=lq.shape[:2])
    low, high = DISPLAY[task]
    lq01, hq01 = (apply_window(x, low=low, high=high) for x in (lq, hq))
    panels = [boundary_overlay(x, np.zeros(x.shape[:2], int)) for x in (lq01, hq01)]  # plain RGB
    panels.append(boundary_overlay(lq01, labels))
    gap = np.full((lq.shape[0], 4, 3), 255, np.uint8)
    strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"data_{task}.png"
    Image.fromarray(strip).save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for task in DISPLAY:
        parser.add_argument(f"--{task}", type=Path, help=f"prepared {task} dataset")
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(getattr(args, task), task) for task in DISPLAY if getattr(args, task) is not None]
    print("LQ vs HQ, test split, per convention (mean ± std over images, median):\n")
    print("| task | convention | PSNR (dB) | SSIM |\n|---|---|---|---|")
    for row in rows:
        for convention, values in row["scores"].items():
            print(f"| {row['task']} | `{convention}` | {summary(values['psnr'], 2)} | {summary(values['ssim'], 4)} |")
    print("\n| task | train | val | test | left out | extra |\n|---|---|---|---|---|---|")
    for row in rows:
        task, root = row["task"], getattr(args, row["task"])
        extra = ""
        if task == "ct":
            extra = (f"noise std {row['noise_full_hu']:.1f} HU full / {row['noise_quarter_hu']:.1f} HU quarter, "
                     f"ratio {row['noise_ratio']:.2f} (median over slices)")
            if row["noise_quarter_expected_hu"] is not None:
                extra += (f"; expected quarter {row['noise_quarter_expected_hu']:.1f} HU (own noise + extra variance "
                          f"of a {row['emulated_hu']:g} HU full dose)")
        if task == "pet":
            extra = f"count ratio full/low {row['count_ratio']:.2f}"
        sizes = " | ".join(str(row.get(f"n_{s}", 0)) for s in ("train", "val", "test"))
        print(f"| {task} | {sizes} | {row['n_left_out']} | {extra} |")
        print(f"figure: {figure(root, task, args.figures)}", flush=True)


if __name__ == "__main__":
    main()
