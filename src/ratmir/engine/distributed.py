"""torchrun support: process group set-up from the environment torchrun provides."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .._checks import check_device

DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False  # started by torchrun (a process group even with one process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """A process group is in use: DDP, barriers and all-reduces run (also with one rank
        under torchrun, so a 1-GPU torchrun run takes the multi-GPU code path)."""
        return self.world_size > 1 or self.launched


def pick_device(device_request: str, info: DistInfo, *, cuda_available: bool) -> torch.device:
    """The device of this process for ``train.device``.

    ``"auto"``: this rank's GPU (``cuda:LOCAL_RANK``) if CUDA is available, else the CPU.
    ``"cuda"``: ``cuda:LOCAL_RANK``. ``"cuda:N"``: GPU N in a single process; under torchrun
    (WORLD_SIZE > 1) every rank takes ``cuda:LOCAL_RANK`` instead, with a warning when N
    differs (one GPU per rank; restrict the GPUs with CUDA_VISIBLE_DEVICES).
    """
    if device_request == "auto":
        return torch.device("cuda", info.local_rank) if cuda_available else torch.device("cpu")
    device = torch.device(device_request)
    if device.type == "cuda" and not cuda_available:
        raise ValueError(f"train.device is {device_request!r} but CUDA is not available on this machine")
    if device.type != "cuda":
        return device
    several = info.world_size > 1
    if device.index is not None and several and device.index != info.local_rank:
        warnings.warn(f"train.device={device_request!r} under torchrun: rank {info.rank} uses cuda:{info.local_rank} "
                      "(its LOCAL_RANK), one GPU per rank; choose GPUs with CUDA_VISIBLE_DEVICES", stacklevel=2)
    if device.index is None or several:
        return torch.device("cuda", info.local_rank)
    return device


def init_distributed(device_request: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[DistInfo, torch.device]:
    """Initialise the process group under torchrun (which sets WORLD_SIZE and MASTER_ADDR;
    also with one process) or whenever WORLD_SIZE > 1, and pick the device
    (:func:`pick_device`). Backend: nccl with CUDA, gloo on CPU; collectives that wait longer
    than ``timeout_s`` seconds fail instead of hanging."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(rank=int(os.environ.get("RANK", "0")), world_size=world,
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                    launched="WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ)
    if device_request != "auto":
        check_device("train.device", device_request)  # parses, and exists on this machine
    device = pick_device(device_request, info, cuda_available=torch.cuda.is_available())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                timeout=timedelta(seconds=timeout_s))
    return info, device


def all_reduce_sum(values: list[float], info: DistInfo, *, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (``values`` itself in a single process)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
