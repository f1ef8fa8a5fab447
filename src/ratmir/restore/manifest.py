"""The restore manifest: what made each output, so ``ratmir restore --resume`` skips finished ones.

``OUT/.ratmir-restore.json`` holds one entry per output (keyed by its path inside OUT): the
input's path, size and modification time (and those of its label map, when region maps come
from a folder), the SHA-256 of the model file, the settings that change the pixels, and the
output's own size and modification time. The entry is written (atomically) just before the
output gets its final name, so an output whose size and time match its entry is complete and
was made from that input, model and settings.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import file_sha256, write_text_atomic
from ..errors import OutputExistsError

MANIFEST_NAME = ".ratmir-restore.json"
MANIFEST_VERSION = 1


def file_stamp(path: Path) -> dict[str, int]:
    """Size and modification time (ns) of a file: cheap evidence that it has not changed."""
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass(frozen=True)
class RunIdentity:
    """The model file's SHA-256 and the settings that change the pixels (JSON values)."""

    model_sha256: str
    settings: dict[str, Any]

    @property
    def digest(self) -> str:
        """SHA-256 of the model hash and the settings: seeds the outputs' DICOM UIDs."""
        text = json.dumps({"model_sha256": self.model_sha256, "settings": self.settings}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def made_from(self, *, source: Path, label_map: Path | None) -> dict[str, Any]:
        """What an output restored from ``source`` (regions from ``label_map``) is made from."""
        return {"input": str(source.resolve()), "input_stamp": file_stamp(source),
                "label_map": None if label_map is None else {"path": str(label_map.resolve()),
                                                             **file_stamp(label_map)},
                "model_sha256": self.model_sha256, "settings": self.settings}


@dataclass
class Manifest:
    """The entries of ``OUT/.ratmir-restore.json``; :meth:`record` rewrites the file atomically."""

    out: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.out / MANIFEST_NAME

    @classmethod
    def load(cls, *, out: Path) -> Manifest:
        """The manifest in ``out``; empty when there is none, or it is unreadable or of another
        version (then no existing output counts as finished)."""
        try:
            data = json.loads((out / MANIFEST_NAME).read_text())
        except (OSError, ValueError):
            return cls(out)
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return cls(out)
        entries = data.get("outputs")
        return cls(out, dict(entries) if isinstance(entries, dict) else {})

    def key(self, output: Path) -> str:
        return output.relative_to(self.out).as_posix()

    def is_finished(self, output: Path, *, made_from: dict[str, Any]) -> bool:
        """True when ``output`` exists as recorded and was made from ``made_from``."""
        entry = self.entries.get(self.key(output))
        if not isinstance(entry, dict) or entry.get("made_from") != made_from or not output.is_file():
            return False
        return entry.get("output") == file_stamp(output)

    def record(self, output: Path, *, written: Path, made_from: dict[str, Any]) -> None:
        """Record ``output`` as made from ``made_from``; ``written`` is the finished file (its
        temporary name before the rename, which keeps size and modification time)."""
        self.entries[self.key(output)] = {"made_from": made_from, "output": file_stamp(written)}
        text = json.dumps({"version": MANIFEST_VERSION, "outputs": self.entries}, indent=1, sort_keys=True)
        write_text_atomic(self.path, text + "\n")


def split_finished(outputs: Sequence[tuple[Path, dict[str, Any]]], *, manifest: Manifest, resume: bool,
                   overwrite: bool) -> tuple[list[int], list[int]]:
    """(indices to restore, indices already finished) of ``outputs`` ((path, made_from) pairs).

    With ``resume``, an output that exists and matches its manifest entry is finished. Any other
    existing output is refused (:class:`OutputExistsError`, one line) unless ``overwrite``.
    """
    todo: list[int] = []
    finished: list[int] = []
    clashes: list[Path] = []
    for i, (path, made_from) in enumerate(outputs):
        if resume and manifest.is_finished(path, made_from=made_from):
            finished.append(i)
            continue
        if path.exists():
            clashes.append(path)
        todo.append(i)
    if clashes and not overwrite:
        if resume:
            raise OutputExistsError(
                f"{len(clashes)} output file(s) exist that this model, input and settings did not make (no matching "
                f"entry in {manifest.path}), e.g. {clashes[0]}; pass --overwrite to replace them, or choose another "
                "--out")
        hint = "--resume to keep the finished ones, " if manifest.path.is_file() else ""
        raise OutputExistsError(f"{len(clashes)} output file(s) already exist, e.g. {clashes[0]}; pass {hint}"
                                "--overwrite to replace them, or choose another --out")
    return todo, finished
