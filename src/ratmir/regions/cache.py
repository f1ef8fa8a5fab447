"""The up-to-date check: a content hash of image + backend + settings, recorded beside each map.

Each label map ``<stem>.nii.gz`` has a record ``<stem>.regions.json`` written after it (so an
interrupted run never leaves a fresh record beside a stale map). The record holds the key
(SHA-256 of the settings fingerprint and the image file's bytes), the window actually used,
the shapes and region counts, and the overlay files written.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .._files import atomic_path
from .labelmap_io import label_map_shape

RECORD_FORMAT = "ratmir-regions/1"
RECORD_SUFFIX = ".regions.json"


def settings_fingerprint(*, backend: str, settings: dict[str, Any], window: str) -> str:
    """Canonical JSON of everything besides the image that determines a label map."""
    return json.dumps({"format": RECORD_FORMAT, "backend": backend, "settings": settings, "window": window},
                      sort_keys=True, separators=(",", ":"))


def content_key(path: str | os.PathLike, *, fingerprint: str) -> str:
    """SHA-256 of ``fingerprint`` and the bytes of the image file at ``path``."""
    digest = hashlib.sha256(fingerprint.encode())
    digest.update(b"\0")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def write_record(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    return path


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The record at ``path``, or None when it is missing or not a record of ours."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None


def is_up_to_date(*, label_path: Path, record_path: Path, key: str, need_overlays: bool) -> bool:
    """True when the map at ``label_path`` was made from the same image and settings (``key``).

    Raises ValueError naming both files when the record matches but the label map's size does
    not match its image (the map was replaced or damaged): delete it to recompute.
    """
    record = read_record(record_path)
    if record is None or record.get("key") != key or not label_path.is_file():
        return False
    overlays = record.get("overlays") or []
    if need_overlays and (not overlays or not all((record_path.parent / n).is_file() for n in overlays)):
        return False
    expected = tuple(record.get("shape", ()))
    actual = label_map_shape(label_path)
    if actual != expected:
        raise ValueError(f"label map {label_path} has shape {actual} but its image {record.get('source')} has "
                         f"shape {expected}; delete it to recompute")
    return True
