"""InVesalius project files (``.inv3``): the CT volume they hold.

An ``.inv3`` file is a gzip'd tar archive. Its ``main.plist`` (Apple property list) names the
volume under ``matrix``: ``filename`` (a member holding the raw array), ``dtype``, ``shape``
([slices, rows, columns]) and ``spacing`` ([x, y, z] in mm); ``modality`` says what it is.
"""

from __future__ import annotations

import os
import plistlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Inv3Volume:
    pixels: np.ndarray  # float32 [D, H, W], HU for CT
    spacing_mm: tuple[float, float, float]  # (x, y, z)
    modality: str
    name: str


def read_inv3(path: str | os.PathLike) -> Inv3Volume:
    """Read the volume of an InVesalius project; ValueError naming the file when it is not one."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as archive:
            members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
            main = plistlib.loads(archive.extractfile(members["main.plist"]).read())
            matrix = main["matrix"]
            raw = archive.extractfile(members[matrix["filename"]]).read()
        shape = tuple(int(s) for s in matrix["shape"])
        pixels = np.frombuffer(raw, dtype=np.dtype(matrix["dtype"]).newbyteorder("<"))
        pixels = pixels.reshape(shape).astype(np.float32)
    except Exception as err:  # noqa: BLE001 - tar, plist, key or size errors: one clear message
        raise ValueError(f"{path}: not a readable InVesalius project (.inv3 with main.plist and a matrix): "
                         f"{type(err).__name__}: {err}") from err
    spacing = tuple(float(s) for s in main.get("spacing", [1.0, 1.0, 1.0]))
    return Inv3Volume(pixels=pixels, spacing_mm=spacing, modality=str(main.get("modality", "")),
                      name=str(main.get("name", path.stem)))
