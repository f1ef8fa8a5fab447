"""Every writer leaves the old file or the complete new one, never a partial file, also when
interrupted (KeyboardInterrupt) after its library has started writing."""

from __future__ import annotations

from pathlib import Path

import importlib

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from ratmir._files import file_mode
from ratmir.io import read_dicom, write_dicom_like, write_nifti, write_png, write_tiff, write_tiff_stack


def interrupted_write(*args, **kwargs):
    """A stand-in for a library writer: writes part of its file, then is interrupted (Ctrl-C)."""
    target = next(a for a in args if isinstance(a, (str, Path)))
    Path(target).write_bytes(b"partial")
    raise KeyboardInterrupt


def _dicom(path):
    src = read_dicom(get_testdata_file("CT_small.dcm"))
    return write_dicom_like(src.dataset, src.pixels, path)


CASES = {
    "nifti": ("vol.nii.gz", "nibabel.save", lambda p: write_nifti(p, np.zeros((3, 4, 5), np.float32))),
    "png": ("img.png", "PIL.Image.Image.save", lambda p: write_png(p, np.zeros((4, 5), np.uint8))),
    "tiff": ("img.tiff", "tifffile.imwrite", lambda p: write_tiff(p, np.zeros((4, 5), np.float32))),
    "tiff stack": ("stack.tif", "tifffile.imwrite", lambda p: write_tiff_stack(p, np.zeros((3, 4, 5), np.uint16))),
    "dicom": ("slice.dcm", "pydicom.dcmwrite", _dicom),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch, case) -> None:
    name, target, write = CASES[case]
    module, _, attr = target.rpartition(".")
    owner = importlib.import_module("PIL.Image").Image if module == "PIL.Image.Image" else importlib.import_module(module)
    monkeypatch.setattr(owner, attr, interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path / "new" / name)
    assert list((tmp_path / "new").iterdir()) == []  # neither the final name nor a temporary file
    old = tmp_path / "old" / name
    old.parent.mkdir()
    old.write_bytes(b"the previous complete file")
    with pytest.raises(KeyboardInterrupt):
        write(old)
    assert old.read_bytes() == b"the previous complete file" and list(old.parent.iterdir()) == [old]


@pytest.mark.parametrize("case", sorted(CASES))
def test_complete_write_has_the_final_name_only(tmp_path, case) -> None:
    name, _, write = CASES[case]
    path = write(tmp_path / name)
    assert path == tmp_path / name and [p.name for p in tmp_path.iterdir()] == [name]
    assert oct(path.stat().st_mode & 0o777) == oct(file_mode())  # the user's usual mode, not mkstemp's 0o600
