"""Where a study keeps its units under OUT: the one place both :mod:`ratmir.engine.study` (which
writes them) and :mod:`ratmir.engine.study_report` (which reads them) take the layout from.

::

    units/<experiment>/seed<k>/                     unit_dir(out, experiment, k): small files, committed
    units/<experiment>/seed<k>/study_train.json     train_record(...): every setting it trained with, its time
    units/<experiment>/seed<k>/evaluation/<source>/ evaluation_dir(...): per-image scores, summary.json
    runs/<experiment>/seed<k>/                      run_dir(out, experiment, k): weights and checkpoints (ignored)

A unit is finished when its ``units/`` files are there, whether or not ``runs/`` is: the
``units/`` folder is small enough to commit with the report, so a fresh clone of the
repository skips finished units and a study can be carried through several runs on several
machines (only the figures of the report need the weights).
"""

from __future__ import annotations

from pathlib import Path

TRAIN_DONE = "study_train.json"


def unit_name(experiment: str, seed: int) -> str:
    """``<experiment>/seed<k>``: how a unit is named in messages and reports."""
    return f"{experiment}/seed{seed}"


def run_dir(out: Path, experiment: str, seed: int) -> Path:
    return Path(out) / "runs" / experiment / f"seed{seed}"


def unit_dir(out: Path, experiment: str, seed: int) -> Path:
    return Path(out) / "units" / experiment / f"seed{seed}"


def train_record(out: Path, experiment: str, seed: int) -> Path:
    return unit_dir(out, experiment, seed) / TRAIN_DONE


def evaluation_dir(out: Path, experiment: str, seed: int, source: str) -> Path:
    return unit_dir(out, experiment, seed) / "evaluation" / source
