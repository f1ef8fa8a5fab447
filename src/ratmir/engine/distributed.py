"""torchrun support: process group set-up from the environment torchrun provides."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .._checks import check_device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_request: str) -> tuple[DistInfo, torch.device]:
    """Initialise the process group under torchrun (WORLD_SIZE > 1) and pick the device.

    ``device_request``: "auto" (this rank's GPU if CUDA is available, else CPU), "cpu",
    "cuda" or "cuda:N". Backend: nccl with CUDA, gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(rank=int(os.environ.get("RANK", "0")), world_size=world,
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if device_request == "auto":
        device = torch.device("cuda", info.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    else:
        device = check_device("train.device", device_request)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
