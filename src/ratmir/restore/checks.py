"""The checks of ``ratmir restore`` that do not depend on one slice, run before the first one.

Each raises :class:`~ratmir.errors.UsageError` (exit 2, one line) and creates nothing: the
inputs exist, ``--out`` is a writable folder outside the inputs, the model's channel count
matches every input (read from headers, not pixels), whole slides have a region backend, and
every DICOM input's Modality is one the model's task restores (NIfTI, PNG and TIFF carry no
modality and are allowed).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputExistsError, UsageError
from ..io import read_dicom_header
from ..io.formats import InputFile, split_name
from ..tasks import TASKS

# PIL modes that read_png returns as one grey channel; every other mode becomes RGB
_GREY_PNG_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L")


@dataclass(frozen=True)
class InputHeader:
    """What the up-front checks need of one input; ``None`` where the header cannot be read
    (the file then fails on its own, with the reader's message, when its turn comes)."""

    channels: int | None
    modality: str | None = None  # DICOM only


def check_inputs_exist(inputs: Sequence[Path]) -> None:
    missing = [p for p in inputs if not p.exists()]
    if missing:
        raise UsageError(f"{len(missing)} input(s) do not exist: {', '.join(map(str, missing[:3]))}"
                         f"{' ...' if len(missing) > 3 else ''}; expected files or folders of images")


def check_output_folder(out: Path, *, inputs: Sequence[Path]) -> None:
    """``out`` is (or can become) a folder outside every input folder, and is writable: probed by
    creating and removing a temporary folder in it (or in its nearest existing parent)."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} is a file; expected a folder for the restored images")
    resolved = out.resolve()
    for item in inputs:
        folder = item.resolve() if item.is_dir() else item.resolve().parent
        if resolved == folder or folder in resolved.parents:
            raise UsageError(f"output folder {resolved} is inside the input folder {folder}: choose another --out")
    existing = next(p for p in (resolved, *resolved.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"--out {out} cannot be created: {existing} is a file, expected a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".ratmir-probe-"))
    except OSError as exc:
        raise UsageError(f"--out {out} is not writable: cannot create anything in {existing} "
                         f"({exc.strerror or type(exc).__name__})") from exc


def read_header(item: InputFile) -> InputHeader:
    """Channels (and DICOM Modality) of one input, from its header only."""
    _, fmt = split_name(item.path)
    try:
        if fmt == "dicom":
            ds = read_dicom_header(item.path)
            palette = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "PALETTE COLOR"
            return InputHeader(3 if palette else int(getattr(ds, "SamplesPerPixel", 1) or 1),
                               str(getattr(ds, "Modality", "") or ""))
        if fmt == "png":
            from PIL import Image

            with Image.open(item.path) as im:
                return InputHeader(1 if im.mode in _GREY_PNG_MODES else 3)
        if fmt == "tiff":
            import tifffile

            with tifffile.TiffFile(item.path) as tif:  # grey or colour by samples per pixel, as io reads it
                samples = tif.series[0].pages[0].samplesperpixel
            return InputHeader(3 if samples in (3, 4) else 1 if samples == 1 else None)
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is restored
        return InputHeader(None)
    return InputHeader(3 if fmt == "slide" else 1)  # NIfTI: grey; slides: RGB


def _examples(items: Sequence[InputFile]) -> str:
    return ", ".join(str(i.path) for i in items[:2]) + (" ..." if len(items) > 2 else "")


def check_slide_regions(items: Sequence[InputFile], *, label_dir: Path | None) -> None:
    """Whole slides get their region maps from a backend, never from a label-map folder."""
    slides = [item for item in items if split_name(item.path)[1] == "slide"]
    if slides and label_dir is not None:
        raise UsageError(f"{len(slides)} whole slide(s) need a region backend (--regions NAME), got the label-map "
                         f"folder {label_dir}: {_examples(slides)}")


def check_channels(headers: dict[InputFile, InputHeader], *, expected: int) -> None:
    """Every readable input has the model's ``expected`` channel count."""
    wrong = [item for item, h in headers.items() if h.channels is not None and h.channels != expected]
    if wrong:
        counts = sorted({headers[i].channels for i in wrong})
        raise UsageError(f"the model expects {expected} channel(s); {len(wrong)} input(s) have "
                         f"{' or '.join(map(str, counts))}: {_examples(wrong)}")


def check_modality(headers: dict[InputFile, InputHeader], *, task: str, force: bool) -> list[str]:
    """Refuse DICOM inputs whose Modality the task does not restore, unless ``force``: then one
    warning line is returned. Tasks without ``dicom_modalities`` (or unknown ones) allow all."""
    spec = TASKS.get(task)
    allowed = spec.dicom_modalities if spec is not None else ()
    wrong = [item for item, h in headers.items() if allowed and h.modality is not None and h.modality not in allowed]
    if not wrong:
        return []
    found = Counter(headers[i].modality or "(none)" for i in wrong)
    what = ", ".join(f"{n} with Modality {m!r}" for m, n in found.most_common())
    expected = " or ".join(repr(m) for m in allowed)
    if not force:
        raise UsageError(f"the model restores {task} images (DICOM Modality {expected}), but {len(wrong)} input(s) "
                         f"are not ({what}: {_examples(wrong)}); pass --force-modality to restore them anyway")
    return [f"warning: restoring {len(wrong)} DICOM input(s) that are not Modality {expected} ({what}) with a "
            f"{task} model (--force-modality)"]
