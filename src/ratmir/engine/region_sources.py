"""Test-time region sources: score one trained model with label maps other than the dataset's.

A source is named by a string or a mapping ``{name: LABEL, backend: KIND, options: {...}}``:

- ``dataset``: the label maps stored with the dataset (what ``ratmir evaluate`` uses).
- any region backend registered in :data:`ratmir.regions.BACKEND_NAMES` (``felzenszwalb``,
  ``slic``, ``grid``, ``none`` = one region, ``sam``, and any backend added there later):
  computed from the LQ image in physical units through the dataset's recorded intensity window.
  A backend equal to the dataset's own is built with the dataset's recorded settings, so
  ``felzenszwalb`` on a felzenszwalb dataset reproduces its maps; ``options`` override.
- ``shuffled``: the dataset's label map with its pixels permuted at random (seeded per image):
  the same region sizes, no spatial meaning -- each token attends to a random set of others.
- ``shifted``: the dataset's label map rolled by half the image in both axes: realistic region
  shapes that no longer sit on the anatomy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch

from ..data import PairedDataset

PERTURBED = ("shuffled", "shifted")
STORED = "dataset"

RegionSourceSpec = Union[str, Mapping[str, Any]]


def region_source_names() -> tuple[str, ...]:
    """Every kind of source: ``dataset``, the perturbations and the registered backends."""
    from ..regions import BACKEND_NAMES

    return (STORED, *PERTURBED, *BACKEND_NAMES)


@dataclass(frozen=True)
class RegionSource:
    name: str  # label in reports
    kind: str  # one of region_source_names()
    options: Mapping[str, Any] = field(default_factory=dict)  # backend options
    seed: int = 0  # for ``shuffled``


def parse_region_source(spec: RegionSourceSpec | RegionSource) -> RegionSource:
    """A :class:`RegionSource` from a name or a ``{name, backend, options, seed}`` mapping."""
    if isinstance(spec, RegionSource):
        source = spec
    elif isinstance(spec, str):
        source = RegionSource(name=spec, kind=spec)
    elif isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"name", "backend", "options", "seed"})
        if unknown or "backend" not in spec:
            raise ValueError(f"a region source mapping needs 'backend' and may have 'name', 'options', 'seed'; "
                             f"got keys {sorted(spec)}")
        kind = spec["backend"]
        options = spec.get("options") or {}
        if not isinstance(options, Mapping):
            raise TypeError(f"region source options must be a mapping, got {type(options).__name__}")
        source = RegionSource(name=str(spec.get("name", kind)), kind=kind, options=dict(options),
                              seed=int(spec.get("seed", 0)))
    else:
        raise TypeError(f"a region source must be a name or a mapping, got {type(spec).__name__} ({spec!r})")
    names = region_source_names()
    if source.kind not in names:
        raise ValueError(f"region source must be one of {names}, got {source.kind!r}")
    return source


class RegionProvider:
    """Label maps of ``dataset``'s images under one source: ``provider(index, item)``."""

    def __init__(self, source: RegionSourceSpec | RegionSource, dataset: PairedDataset) -> None:
        self.source = parse_region_source(source)
        self.dataset = dataset
        self.backend = None
        self.window = None
        self.settings: dict[str, Any] = {}
        if self.source.kind not in (STORED, *PERTURBED):
            self._build_backend()

    def _build_backend(self) -> None:
        from ..data.prepare import TASK_WINDOWS, task_region_options
        from ..regions import backend_option_names, build_backend, parse_window

        manifest = self.dataset.manifest
        task = manifest["task"]
        recorded = manifest.get("regions") or {}
        kind = self.source.kind
        allowed = set(backend_option_names(kind))
        if recorded.get("backend") == kind:
            options = {k: v for k, v in (recorded.get("settings") or {}).items() if k in allowed and v is not None}
        else:
            options = task_region_options(task, kind)
        options.update(self.source.options)
        self.window = parse_window(recorded.get("window") or TASK_WINDOWS.get(task, "auto"))
        self.backend = build_backend(kind, **options)
        self.settings = {"options": options, "window": str(self.window)}

    def record(self) -> dict[str, Any]:
        """What identifies this source (stored in evaluation summaries)."""
        return {"name": self.source.name, "kind": self.source.kind, "seed": self.source.seed, **self.settings}

    def __call__(self, index: int, item: Mapping[str, Any]) -> torch.Tensor:
        kind = self.source.kind
        stored: torch.Tensor = item["regions"]
        if kind == STORED:
            return stored
        if kind == "shifted":
            h, w = stored.shape[-2:]
            return torch.roll(stored, shifts=(h // 2, w // 2), dims=(-2, -1))
        if kind == "shuffled":
            rng = np.random.default_rng([self.source.seed, index])
            flat = stored.reshape(-1)
            return flat[torch.from_numpy(rng.permutation(flat.numel()))].reshape(stored.shape)
        from ..data.layout import read_image
        from ..regions.batch import segment_pixels

        pixels = read_image(self.dataset.paths(item["name"]).lq)
        labels, _, _ = segment_pixels(pixels, is_volume=False, backend=self.backend, window=self.window)
        return torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
