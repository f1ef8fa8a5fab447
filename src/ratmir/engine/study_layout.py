"""Where a study keeps its units under OUT: the one place both :mod:`ratmir.engine.study` (which
writes them) and :mod:`ratmir.engine.study_report` (which reads them) take the layout from.

::

    runs/<experiment>/seed<k>/                     run_dir(out, experiment, k)
    runs/<experiment>/seed<k>/study_train.json     TRAIN_DONE, written when its training finished
    runs/<experiment>/seed<k>/evaluation/<source>/ evaluation_dir(out, experiment, k, source)
"""

from __future__ import annotations

from pathlib import Path

TRAIN_DONE = "study_train.json"


def run_dir(out: Path, experiment: str, seed: int) -> Path:
    return Path(out) / "runs" / experiment / f"seed{seed}"


def evaluation_dir(out: Path, experiment: str, seed: int, source: str) -> Path:
    return run_dir(out, experiment, seed) / "evaluation" / source
