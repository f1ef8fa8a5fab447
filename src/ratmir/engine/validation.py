"""Validation during training: PSNR/SSIM on full images in the normalised range [0, 1]."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ..data import PairedDataset
from ..metrics import psnr, ssim


@torch.no_grad()
def validate_model(model: torch.nn.Module, dataset: PairedDataset, *, device: torch.device, amp: str = "none",
                   max_images: int | None = None) -> dict[str, float]:
    """Mean PSNR and SSIM (data_range 1) of ``model`` over ``dataset`` (full images, batch 1)."""
    model.eval()
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp == "bf16" else nullcontext()
    scores = {"psnr": [], "ssim": []}
    for i in range(n):
        item = dataset[i]
        lq, hq = item["lq"][None].to(device), item["hq"][None].to(device)
        with autocast:
            pred = model(lq, item["regions"][None].to(device))
        pred = pred.float().clamp(0, 1)
        scores["psnr"].append(float(psnr(pred, hq, data_range=1.0)[0]))
        scores["ssim"].append(float(ssim(pred, hq, data_range=1.0)[0]))
    return {k: sum(v) / len(v) for k, v in scores.items()}
