"""Where each restored file goes, and writing it so that no half-written file ever has its name.

Every output is written under a temporary name in its own folder and renamed onto its final
name once complete (:func:`ratmir._files.atomic_path`); an exception or a Ctrl-C removes the
temporary file. ``on_written`` runs on the finished temporary file just before the rename, so a
record of the output (the resume manifest) always exists before the output does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .._files import atomic_path
from ..io.formats import InputFile, split_name

_SUFFIXES = {"nifti": ".nii.gz", "png": ".png", "tiff": ".tiff", "slide": ".tiff"}


def output_path(out: Path, item: InputFile) -> Path:
    """Where the restored ``item`` is written: OUT/<stem> with the format's suffix (a DICOM file
    keeps its name; TIFF stacks and whole slides become ``.tiff``)."""
    _, fmt = split_name(item.path)
    base = out / item.stem
    if fmt == "dicom":
        return base.with_name(item.path.name if item.path.suffix else base.name + ".dcm")
    return base.with_name(base.name + _SUFFIXES.get(fmt or "tiff", ".tiff"))


def _suffix(target: Path) -> str:
    """The suffix a writer that picks its format by name must see (``.nii.gz`` whole)."""
    return ".nii.gz" if target.name.lower().endswith(".nii.gz") else (target.suffix or ".tmp")


@contextmanager
def output_file(target: Path, *, on_written: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` to write the output to; when the block succeeds,
    ``on_written(temporary path)`` runs and the file is renamed to ``target``; when it fails or
    is interrupted, the temporary file is removed and ``target`` is untouched."""
    with atomic_path(target, suffix=_suffix(target)) as tmp:
        yield tmp
        if on_written is not None:
            on_written(tmp)
