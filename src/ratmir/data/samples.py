"""What ``ratmir prepare`` reads: samples (one 2-D image each, loaded only when written) and
the record of every source that was looked for.

A :class:`Sample` loads either the task's degradation input (an HU slice, a PET phantom, an RGB
tile), which ``prepare`` degrades with the task, or an acquired :class:`RealPair` (e.g. a full-
and quarter-dose slice of the Mayo challenge), which is written as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

#: How a single-subject group is cut into blocks: gap between the train and test blocks.
DEFAULT_SLICE_GAP_MM = 10.0


@dataclass(frozen=True)
class RealPair:
    """An acquired (not simulated) pair in physical units, and where each image came from."""

    hq: np.ndarray
    lq: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """One 2-D image to prepare.

    ``subject`` is the patient/volume/slide (never in two splits); ``group`` the source family
    it is split with; ``position`` its place along the subject (slice position in mm, tile row
    in pixels) for block splits; ``origin`` the file (and slice or tile) for errors and records;
    ``pixel_size_mm`` the in-plane pixel size where the degradation needs it (CT).
    """

    name: str
    subject: str
    group: str
    position: float
    origin: str
    load: Callable[[], Any]
    pixel_size_mm: float | None = None


@dataclass
class SourceSet:
    """Samples of one ``prepare`` run, the source records and the block gap of each group."""

    samples: list[Sample] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    gaps: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: SourceSet) -> None:
        self.samples += other.samples
        self.records += other.records
        self.gaps.update(other.gaps)
        self.notes += other.notes

    @property
    def missing(self) -> list[str]:
        return [r["id"] for r in self.records if r.get("status") != "used"]


def safe_name(*parts: object) -> str:
    """A file-name-safe sample name from ``parts`` (joined by ``_``)."""
    joined = "_".join(str(p) for p in parts if str(p))
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", joined).strip("-.") or "sample"


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def tile_origins(shape: tuple[int, ...], *, tile: int) -> Iterator[tuple[int, int]]:
    """(top, left) of the non-overlapping ``tile`` x ``tile`` tiles that fit in ``shape``, row by row."""
    for top in range(0, shape[0] - tile + 1, tile):
        for left in range(0, shape[1] - tile + 1, tile):
            yield top, left


def tissue_fraction(rgb: np.ndarray, *, background_level: float = 220.0) -> float:
    """Fraction of pixels darker than ``background_level`` (mean of R, G, B): the stained tissue
    of a bright-field slide, whose glass background is near white."""
    return float((np.asarray(rgb, dtype=np.float32).mean(axis=-1) < background_level).mean())


def rgb_tiles(*, image_id: str, subject: str, group: str, origin: str, shape: tuple[int, ...], tile: int,
              read: Callable[[int, int], np.ndarray], min_tissue: float, max_tiles: int | None) -> list[Sample]:
    """Samples of the tiles of one RGB image; ``read(top, left)`` returns a tile (uint8 or float
    in [0, 255]). Background tiles (tissue fraction below ``min_tissue``) are dropped when the
    tiles are listed, which reads each tile once; at most ``max_tiles`` are kept, evenly spread."""
    origins = [(t, l) for t, l in tile_origins(shape, tile=tile) if tissue_fraction(read(t, l)) >= min_tissue]
    if max_tiles is not None and len(origins) > max_tiles:
        origins = [origins[int(round(i))] for i in np.linspace(0, len(origins) - 1, max_tiles)]
    return [
        Sample(name=safe_name(image_id, f"y{t:05d}x{l:05d}"), subject=subject, group=group, position=float(t),
               origin=f"{origin} tile (y={t}, x={l}, {tile}x{tile})",
               load=(lambda t=t, l=l: np.asarray(read(t, l), dtype=np.float32)))
        for t, l in origins
    ]
