"""Write a dataset folder all at once: build it in a temporary folder beside the target and
rename it into place at the end, so an interrupted or failed run leaves nothing half-made."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._files import dir_mode
from .layout import DATASET_FILE


def check_output_free(out: Path, *, force: bool) -> None:
    """Refuse an existing ``out`` unless ``force``; even with ``force`` only a prepared dataset
    (a folder with ``dataset.json``) or an empty folder is replaced, never other files."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; expected a new output folder")
    if not force:
        raise FileExistsError(f"{out} already exists; pass --force (force=True) to replace it")
    if not (out / DATASET_FILE).is_file() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not a prepared dataset (no {DATASET_FILE}) and is not empty: "
                              "refusing to replace it even with --force; expected a dataset folder or a new path")


@contextmanager
def staged_output(out: Path, *, force: bool) -> Iterator[Path]:
    """Yield a new empty folder beside ``out``; when the block ends normally it becomes ``out``
    (replacing an old dataset when ``force``), on any exception (Ctrl-C included) it is removed.
    The folder gets the mode a plain ``mkdir`` would give (``0o777`` minus the umask)."""
    out = Path(out)
    check_output_free(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        os.chmod(staging, dir_mode())  # mkdtemp makes it 0o700; the dataset gets the usual mode
        yield staging
        check_output_free(out, force=force)
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            try:
                os.replace(staging, out)
            except BaseException:
                os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
