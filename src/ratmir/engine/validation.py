"""Validation during training: PSNR/SSIM on full images in the normalised range [0, 1].

Under torchrun every rank scores its share of the images (every WORLD_SIZE-th one) and the
sums are added up over the ranks, so validation takes 1/WORLD_SIZE of the time and no rank
waits for another's whole pass.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ..data import PairedDataset
from ..metrics import psnr, ssim
from .distributed import DistInfo, all_reduce_sum


@torch.no_grad()
def validation_sums(model: torch.nn.Module, dataset: PairedDataset, *, device: torch.device, amp: str = "none",
                    max_images: int | None = None, rank: int = 0, world_size: int = 1) -> dict[str, float]:
    """Sums of PSNR and SSIM (data_range 1), of the input's PSNR (``input_psnr``, what returning
    the input scores) and the image count over this rank's share of the
    first ``max_images`` images of ``dataset`` (images ``rank``, ``rank + world_size``, ...)."""
    model.eval()
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp == "bf16" else nullcontext()
    sums = {"psnr": 0.0, "ssim": 0.0, "input_psnr": 0.0, "count": 0.0}
    for i in range(rank, n, world_size):
        item = dataset[i]
        lq, hq = item["lq"][None].to(device), item["hq"][None].to(device)
        with autocast:
            pred = model(lq, item["regions"][None].to(device))
        pred = pred.float().clamp(0, 1)
        sums["psnr"] += float(psnr(pred, hq, data_range=1.0)[0])
        sums["ssim"] += float(ssim(pred, hq, data_range=1.0)[0])
        sums["input_psnr"] += float(psnr(lq.float().clamp(0, 1), hq, data_range=1.0)[0])  # what the identity scores
        sums["count"] += 1
    return sums


def validate_model(model: torch.nn.Module, dataset: PairedDataset, *, device: torch.device, amp: str = "none",
                   max_images: int | None = None, info: DistInfo | None = None) -> dict[str, float]:
    """Mean PSNR and SSIM of ``model`` over ``dataset`` (full images, batch 1), the input's PSNR
    (``input_psnr``) and the gain over it (``gain_db``); with ``info``
    of a torchrun job, sharded across its ranks (every rank must call it; all get the means)."""
    info = info or DistInfo()
    sums = validation_sums(model, dataset, device=device, amp=amp, max_images=max_images, rank=info.rank,
                           world_size=info.world_size)
    keys = ("psnr", "ssim", "input_psnr", "count")
    totals = dict(zip(keys, all_reduce_sum([sums[k] for k in keys], info, device=device)))
    count = totals.pop("count")
    if count == 0:
        raise ValueError("the validation split is empty (or data.val_max_images is 0)")
    means = {k: v / count for k, v in totals.items()}
    means["gain_db"] = means["psnr"] - means["input_psnr"]  # over the identity (the LQ input itself)
    return means
