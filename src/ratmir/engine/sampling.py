"""Deterministic, resumable order of training samples.

The samples of iteration ``i`` are a pure function of (seed, i, rank): epoch ``e`` visits the
dataset in the order ``randperm(n, seed + e)``, the global sample stream is cut into batches of
``batch_size x world_size`` and rank ``r`` takes its slice. Indices are encoded as
``epoch * n + index`` so :class:`~ratmir.data.PairedDataset` derives each crop and flip from
(seed, epoch, index) without shared state. Resuming at iteration ``i`` therefore needs no
sampler state — unlike ``DistributedSampler``, which can only restart at an epoch boundary.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[list[int]]):
    def __init__(self, *, num_samples: int, batch_size: int, seed: int, start_iteration: int = 0,
                 end_iteration: int, rank: int = 0, world_size: int = 1) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.n, self.batch_size, self.seed = num_samples, batch_size, seed
        self.start, self.end = start_iteration, end_iteration
        self.rank, self.world_size = rank, world_size
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))}
        return self._perms[epoch]

    def batch(self, iteration: int) -> list[int]:
        first = (iteration * self.world_size + self.rank) * self.batch_size
        out = []
        for k in range(first, first + self.batch_size):
            epoch, pos = divmod(k, self.n)
            out.append(epoch * self.n + int(self._perm(epoch)[pos]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for it in range(self.start, self.end):
            yield self.batch(it)

    def __len__(self) -> int:
        return max(self.end - self.start, 0)
