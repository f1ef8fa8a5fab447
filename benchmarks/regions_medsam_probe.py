"""How the medsam backend's settings move its map relative to the authors' SAM map, and how well
LiteMedSAM segments the authors' regions when given their own boxes.

    python benchmarks/regions_medsam_probe.py

1. Oracle: for every region of the authors' label map with >= 200 px, its bounding box is the
   prompt; prints the IoU of LiteMedSAM's mask with that region, its predicted IoU and stability.
   (Regions that larger masks were painted over, such as the air, are not compact objects.)
2. Sweep: the medsam backend's label map under a few settings, with VI and ARI against the
   authors' map (each distinct box is decoded once and reused across settings).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from regions import DEFAULT_EXAMPLE, adjusted_rand_index, load_example
from ratmir.regions import build_backend, masks_to_label_map
from ratmir.regions.box_prompts import label_boxes, select_masks, stability_score
from ratmir.regions.medsam import load_medsam_model, preprocess

SWEEP = [
    {},
    {"background": "single"},
    {"stability_thresh": 0.7},
    {"stability_thresh": 0.9},
    {"pred_iou_thresh": 0.8},
    {"max_area_fraction": 0.3},
    {"max_area_fraction": 0.3, "stability_thresh": 0.7},
    {"fz_scales": (100.0, 400.0)},
    {"min_area_fraction": 0.0003},
    {"grid_divisions": (1, 2, 3), "max_area_fraction": 0.3},
]


def oracle(backend, image: np.ndarray, reference: np.ndarray, embedding: torch.Tensor) -> None:
    scale = 256 / max(image.shape)
    ids = [i for i in range(1, reference.max() + 1) if (reference == i).sum() >= 200]
    regions = np.where(np.isin(reference, ids), reference, 0)
    boxes = label_boxes(regions, min_area=200) * scale
    logits, iou_pred = backend.decode(embedding, boxes)
    stability = stability_score(logits)
    masks = F.interpolate(logits[:, None], size=image.shape, mode="bilinear", align_corners=False)[:, 0] > 0
    print("| authors' region | pixels | IoU of LiteMedSAM's mask | predicted IoU | stability |\n|---|---|---|---|---|")
    for label, mask, pred, stab in zip(ids, masks.numpy(), iou_pred, stability, strict=True):
        region = reference == label
        iou = (region & mask).sum() / (region | mask).sum()
        print(f"| {label} | {region.sum()} | {iou:.2f} | {pred:.2f} | {stab:.2f} |")


def sweep(model, image: np.ndarray, reference: np.ndarray, embedding: torch.Tensor) -> None:
    from skimage.metrics import variation_of_information

    cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
    inputs, (h, w) = preprocess(image)
    work = np.ascontiguousarray(inputs[0, 0, :h, :w].numpy())
    print("\n| settings (others default) | boxes | masks kept | regions | VI | ARI |\n|---|---|---|---|---|---|")
    for options in SWEEP:
        backend = build_backend("medsam", model=model, **options)
        boxes = backend.proposals(work)
        todo = [b for b in map(tuple, boxes.tolist()) if b not in cache]
        if todo:
            logits, iou = backend.decode(embedding, torch.tensor(todo))
            cache.update({b: (lg, i) for b, lg, i in zip(todo, logits, iou, strict=True)})
        keys = list(map(tuple, boxes.tolist()))
        logits = torch.stack([cache[b][0] for b in keys])[:, :h, :w]
        iou = torch.stack([cache[b][1] for b in keys])
        keep = select_masks(logits, iou, pred_iou_thresh=backend.pred_iou_thresh,
                            stability_thresh=backend.stability_thresh,
                            min_area=max(1, round(backend.min_area_fraction * h * w)),
                            max_area_fraction=backend.max_area_fraction, nms_thresh=backend.nms_thresh)
        up = F.interpolate(logits[keep][:, None], size=image.shape, mode="bilinear", align_corners=False)[:, 0] > 0
        masks = [m.numpy() for m in up]
        labels = masks_to_label_map([{"segmentation": m} for m in masks], shape=image.shape)
        if backend.background == "oversegment":
            labels = backend._split_background(labels, image, paint=image.shape, background=len(masks) + 1)
        vi = sum(variation_of_information(reference, labels))
        print(f"| {options or 'defaults'} | {len(keys)} | {len(masks)} | {np.unique(labels).size} | {vi:.2f} | "
              f"{adjusted_rand_index(reference, labels):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=DEFAULT_EXAMPLE)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image, reference, _ = load_example(args.example)
    if reference is None:
        raise SystemExit(f"reference example not found at {args.example}")
    model = load_medsam_model()
    start = time.perf_counter()
    with torch.inference_mode():
        embedding = model.image_encoder(preprocess(image)[0])
    oracle(build_backend("medsam", model=model), image, reference, embedding)
    sweep(model, image, reference, embedding)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
