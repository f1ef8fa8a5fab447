"""Restored DICOM files with UIDs that depend only on what made them.

The SOPInstanceUID of a restored file is derived from the input's SOPInstanceUID and the run's
identity (model file hash and pixel settings, :class:`~ratmir.restore.manifest.RunIdentity`),
the SeriesInstanceUID from the input's SeriesInstanceUID and the same identity: one new
series per input series, and a resumed run writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import write_dicom_like


def derived_uid(*, kind: str, source_uid: str, run_digest: str) -> str:
    """A UID (pydicom's root) determined by ``kind``, the source's UID and the run."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[kind, source_uid, run_digest])


def write_restored_dicom(source: object, pixels: np.ndarray, path: Path, *, source_key: str, series_key: str,
                         run_digest: str, series_description: str, derivation: str) -> Path:
    """Write ``pixels`` ([H, W] or [frames, H, W], physical units) derived from the dataset
    ``source`` to ``path`` with derived UIDs; ``source_key``/``series_key`` stand in for the
    source's SOPInstanceUID/SeriesInstanceUID where it has none."""
    instance_uid = derived_uid(kind="instance", source_uid=str(getattr(source, "SOPInstanceUID", "") or source_key),
                               run_digest=run_digest)
    series_uid = derived_uid(kind="series", source_uid=str(getattr(source, "SeriesInstanceUID", "") or series_key),
                             run_digest=run_digest)
    write_dicom_like(source, pixels, path, series_uid=series_uid, sop_instance_uid=instance_uid,
                     series_description=series_description, derivation=derivation)
    return path
