"""Crash-safe file writing shared by every writer that must never leave a half-written file.

Files and folders made here get the user's usual permissions (``0o666`` / ``0o777`` minus the
umask), like ``open()`` and ``mkdir()`` give, not the private ``0o600`` / ``0o700`` of
``tempfile``: a colleague or a service on a shared server can read a model or a dataset.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it.

    Linux reports it in ``/proc/self/status`` (``Umask:`` line, kernel >= 4.7), which is free of
    side effects. Elsewhere the only portable way is ``os.umask(0)`` followed by restoring the old
    value; that briefly changes a process-wide setting (a thread creating a file at that instant
    would get mode 0o666), an accepted risk confined to this one function.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """Mode of a new regular file under the current umask (``0o644`` under umask 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a new folder under the current umask (``0o755`` under umask 022)."""
    return 0o777 & ~current_umask()


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; it replaces ``path`` when the block
    succeeds and is removed when it fails, so ``path`` is always the old or the new file.

    ``suffix`` lets writers that choose a format by extension (e.g. ``.nii.gz``) see it. The new
    file gets the mode a plain ``open(path, "w")`` would give (see :func:`file_mode`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:  # from here on, an exception or Ctrl-C removes the temporary file
        os.close(fd)
        yield Path(tmp)
        # after the writer: some replace tmp with a private file of their own (safetensors 0.8
        # writes 0o600 through its own temporary file), so the mode is set on what they left
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_path`; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def writer_suffix(path: str | os.PathLike) -> str:
    """The ending of ``path``'s name that writers choose a format by, for :func:`atomic_path`'s
    ``suffix``: ``.nii.gz`` (a compressed ending keeps the suffix before it), ``.png``, ...; ``.tmp``
    when the name has no suffix."""
    suffixes = Path(path).suffixes
    if len(suffixes) >= 2 and suffixes[-1].lower() in (".gz", ".bz2", ".xz", ".zst"):
        return "".join(suffixes[-2:])
    return suffixes[-1] if suffixes else ".tmp"


def file_sha256(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    """SHA-256 hex digest of a file, read in blocks of ``chunk`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
