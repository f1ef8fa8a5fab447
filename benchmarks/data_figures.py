"""Measure prepared datasets and draw one figure per task (docs/data.md).

    ratmir prepare ct --out data/ct          # likewise pet, pathology
    python benchmarks/data_figures.py --ct data/ct --pet data/pet --pathology data/pathology

Prints a Markdown table: images per split, LQ-vs-HQ PSNR/SSIM on the normalised test and train
images (data_range 1), for CT the noise std (HU) in the most uniform soft-tissue region at full
and quarter dose, for PET the count ratio; writes docs/figures/data_<task>.png (LQ, HQ, region
boundaries on the LQ image).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ratmir.data import PairedDataset, read_manifest
from ratmir.data.ct_noise import most_uniform_roi
from ratmir.data.layout import pair_paths, read_image
from ratmir.metrics import psnr, ssim
from ratmir.regions import apply_window, boundary_overlay

DISPLAY = {"ct": (-160.0, 240.0), "pet": (0.0, 20.0), "pathology": (0.0, 255.0)}  # physical units


def measure(root: Path, task: str) -> dict:
    manifest = read_manifest(root)
    row = {"task": task, **{f"n_{s}": len(v) for s, v in manifest["splits"].items()}}
    psnrs, ssims = [], []
    for split in manifest["splits"]:
        dataset = PairedDataset(root, split, cache=False)
        for index in range(len(dataset)):  # indices past the end wrap around (epochs): no plain iteration
            item = dataset[index]
            lq, hq = item["lq"][None].double(), item["hq"][None].double()
            psnrs.append(float(psnr(lq, hq, data_range=1.0)))
            ssims.append(float(ssim(lq, hq, data_range=1.0)))
    row["psnr"], row["ssim"] = float(np.mean(psnrs)), float(np.mean(ssims))
    per_image = manifest["degradation"]["per_image"]
    if task == "ct":
        ratios, full, quarter = [], [], []
        for split, names in manifest["splits"].items():
            for name in names:
                p = pair_paths(root, split, name)
                hq, lq = read_image(p.hq), read_image(p.lq)
                roi = most_uniform_roi(hq)
                if roi is not None:
                    full.append(float(hq[roi].std()))
                    quarter.append(float(lq[roi].std()))
                    ratios.append(quarter[-1] / full[-1])
        row["noise_full_hu"], row["noise_quarter_hu"] = float(np.median(full)), float(np.median(quarter))
        row["noise_ratio"] = float(np.median(ratios))
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
    print("| task | train | test | LQ-vs-HQ PSNR (dB) | SSIM | extra |\n|---|---|---|---|---|---|")
    for task in DISPLAY:
        root = getattr(args, task)
        if root is None:
            continue
        row = measure(root, task)
        extra = ""
        if task == "ct":
            extra = (f"noise std {row['noise_full_hu']:.1f} HU full / {row['noise_quarter_hu']:.1f} HU quarter, "
                     f"ratio {row['noise_ratio']:.2f} (median over slices)")
        if task == "pet":
            extra = f"count ratio full/low {row['count_ratio']:.2f}"
        print(f"| {task} | {row['n_train']} | {row['n_test']} | {row['psnr']:.2f} | {row['ssim']:.4f} | {extra} |")
        print(f"figure: {figure(root, task, args.figures)}", flush=True)


if __name__ == "__main__":
    main()
