"""PairedDataset: (low-quality, high-quality, region map) triples of a prepared dataset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_positive_int
from ..tasks.base import Normalisation
from .layout import PairPaths, pair_paths, read_image, read_manifest

# The 8 symmetries of the square: k quarter turns, then an optional left-right flip.
NUM_TRANSFORMS = 8


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """Apply symmetry ``k`` in [0, 8) to the first two (spatial) axes of ``array``."""
    out = np.rot90(array, k % 4, axes=(0, 1))
    return np.flip(out, axis=1) if k >= 4 else out


class PairedDataset(Dataset):
    """Items ``{"lq": [C, H, W], "hq": [C, H, W], "regions": int64 [H, W], "name": str}``.

    Args:
        root: a folder written by ``ratmir prepare`` (with ``dataset.json``).
        split: a split listed in ``dataset.json`` (e.g. ``"train"``, ``"test"``).
        patch_size: random crops of this size, cut at the same place from all three arrays;
            ``None`` gives full images (evaluation).
        augment: apply the same one of the 8 flips/rotations to all three arrays.
        seed: crops and augmentations are a pure function of (seed, epoch, index), so a run is
            reproducible and can resume mid-epoch. The epoch is :meth:`set_epoch`'s value plus
            ``i // len(self)`` for an index ``i`` past the end: index ``e * len + k`` is image
            ``k`` in epoch ``e`` (what :class:`~ratmir.engine.sampling.ResumableBatchSampler`
            yields).
        cache: keep decoded images in memory after the first read.

    Values are in the task's normalised range (the normalisation recorded in ``dataset.json``).
    """

    def __init__(self, root: str | os.PathLike, split: str, *, patch_size: int | None = None,
                 augment: bool = False, seed: int = 0, cache: bool = True) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        splits = self.manifest["splits"]
        if split not in splits:
            raise ValueError(f"split must be one of {sorted(splits)} in {self.root / 'dataset.json'}, got {split!r}")
        if patch_size is not None:
            check_positive_int("patch_size", patch_size)
        self.split = split
        self.names: list[str] = list(splits[split])
        if not self.names:
            raise ValueError(f"split {split!r} of {self.root} is empty")
        self.patch_size = patch_size
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.channels = int(self.manifest["channels"])
        self.normalisation = Normalisation.from_record(self.manifest["normalisation"])
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = {} if cache else None
        missing = [str(p) for name in self.names for p in vars(self.paths(name)).values() if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} file(s) of split {split!r} are missing, e.g. {missing[:3]}")

    def paths(self, name: str) -> PairPaths:
        return pair_paths(self.root, self.split, name)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        """The images once, in order (indices past the end address later epochs instead)."""
        return (self[i] for i in range(len(self)))

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        from ..regions import load_label_map

        p = self.paths(self.names[index])
        lq, hq = read_image(p.lq), read_image(p.hq)
        if lq.shape != hq.shape:
            raise ValueError(f"{p.lq} has shape {lq.shape} but its pair {p.hq} has {hq.shape}")
        lq, hq = (a[..., None] if a.ndim == 2 else a for a in (lq, hq))
        if lq.shape[-1] != self.channels:
            raise ValueError(f"{p.lq} has {lq.shape[-1]} channel(s); dataset.json declares {self.channels}")
        regions = load_label_map(p.regions, expected_shape=lq.shape[:2]).astype(np.int64)
        item = (self.normalisation.normalise(lq), self.normalisation.normalise(hq), regions)
        if self._cache is not None:
            self._cache[index] = item
        return item

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            raise IndexError(f"index must be >= 0, got {index}")
        epoch, index = divmod(index, len(self.names))
        lq, hq, regions = self._load(index)
        rng = np.random.default_rng([self.seed, self.epoch + epoch, index])
        if self.patch_size is not None:
            p = self.patch_size
            h, w = regions.shape
            if h < p or w < p:
                raise ValueError(f"{self.names[index]}: image {h}x{w} is smaller than patch_size {p}")
            top, left = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            lq, hq, regions = (a[top:top + p, left:left + p] for a in (lq, hq, regions))
        if self.augment:
            k = int(rng.integers(0, NUM_TRANSFORMS))
            lq, hq, regions = (dihedral(a, k) for a in (lq, hq, regions))

        def chw(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))

        return {"lq": chw(lq), "hq": chw(hq), "regions": torch.from_numpy(np.ascontiguousarray(regions)),
                "name": self.names[index]}
