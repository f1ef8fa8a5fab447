"""File and folder modes of ratmir's atomic writes follow the umask (not tempfile's 0o600/0o700)."""

from __future__ import annotations

import os
import stat

import pytest

from ratmir import _files
from ratmir._files import atomic_path, current_umask, write_text_atomic
from ratmir.data.staging import staged_output


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask) -> None:
    assert current_umask() == umask
    assert current_umask() == umask  # unchanged by the first read


def test_current_umask_without_proc(umask, monkeypatch) -> None:
    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(_files, "open", no_proc, raising=False)
    assert current_umask() == umask
    assert current_umask() == umask


def test_atomic_write_honours_umask(tmp_path, umask) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what an ordinary open() gives
    with atomic_path(tmp_path / "model.bin") as tmp:
        tmp.write_bytes(b"weights")
    assert _mode(tmp_path / "model.bin") == 0o666 & ~umask == _mode(plain)
    write_text_atomic(tmp_path / "notes.txt", "hello")
    assert _mode(tmp_path / "notes.txt") == 0o666 & ~umask
    assert (tmp_path / "notes.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "notes.txt", "plain.txt"]


def test_atomic_write_replaced_file_gets_the_umask_mode(tmp_path, umask) -> None:
    target = tmp_path / "weights.safetensors"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    with atomic_path(target) as tmp:
        tmp.unlink()  # writers that recreate the file (e.g. by name) get the umask mode as well
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o666 & ~umask


def test_staged_dataset_folder_honours_umask(tmp_path, umask) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    out = tmp_path / "ds"
    with staged_output(out, force=False) as staging:
        (staging / "dataset.json").write_text("{}")
    assert _mode(out) == 0o777 & ~umask == _mode(plain)
    assert _mode(out / "dataset.json") == 0o666 & ~umask
