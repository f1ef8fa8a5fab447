"""`ratmir restore` checks everything that does not depend on one slice first: exit 2, one line,
nothing created, no region map or restoration computed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import examples
from ratmir_testdata import write_tiny_ct_model
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.io import write_png
from ratmir.restore import files as restore_module


@pytest.fixture()
def no_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any region map or restoration that is started (there must be none)."""
    started: list[str] = []

    def segment(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started.append("regions")
        raise AssertionError("a region map was computed before the up-front checks refused")

    monkeypatch.setattr(restore_module, "segment_pixels", segment)
    monkeypatch.setattr(restore_module._Restorer, "restore_file", lambda *a, **k: started.append("restore"))
    return started


def _restore(*args: object):
    return CliRunner().invoke(app, ["restore", *map(str, args), "--regions", "grid", "--no-progress"])


def _refused(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture()
def model(tmp_path) -> Path:
    return write_tiny_ct_model(tmp_path / "model.safetensors")


@pytest.fixture()
def pngs(tmp_path) -> Path:
    write_png(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint16))
    return tmp_path / "in"


def test_missing_input_is_a_usage_error_and_creates_nothing(model, pngs, tmp_path, no_work) -> None:
    out = tmp_path / "out" / "nested"
    _refused(_restore(pngs, tmp_path / "nope.dcm", "--model", model, "--out", out),
             "1 input(s) do not exist", "nope.dcm")
    assert not (tmp_path / "out").exists() and no_work == []


@pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/sys").is_dir(), reason="needs Linux /sys")
def test_out_that_cannot_be_written(model, pngs, tmp_path, no_work) -> None:
    """/sys refuses new entries even to root; a chmod'ed folder does too for other users."""
    _refused(_restore(pngs, "--model", model, "--out", "/sys/ratmir-restore-test"), "is not writable", "/sys")
    assert not Path("/sys/ratmir-restore-test").exists()
    locked = tmp_path / "locked"
    locked.mkdir()
    afile = tmp_path / "afile"
    afile.write_text("x")
    _refused(_restore(pngs, "--model", model, "--out", afile / "sub"), "cannot be created", "is a file")
    if os.geteuid() != 0:  # root writes anywhere
        locked.chmod(0o500)
        try:
            _refused(_restore(pngs, "--model", model, "--out", locked / "out"), "is not writable")
        finally:
            locked.chmod(0o700)
    assert list(locked.iterdir()) == [] and no_work == []  # the probe leaves nothing behind


def test_channel_mismatch_before_any_region_map(model, tmp_path, no_work) -> None:
    write_png(tmp_path / "in" / "grey.png", np.zeros((16, 16), np.uint8))
    write_png(tmp_path / "in" / "rgb1.png", np.zeros((16, 16, 3), np.uint8))
    write_png(tmp_path / "in" / "rgb2.png", np.zeros((16, 16, 3), np.uint8))
    _refused(_restore(tmp_path / "in", "--model", model, "--out", tmp_path / "out"),
             "the model expects 1 channel(s); 2 input(s) have 3", "rgb1.png")
    assert not (tmp_path / "out").exists() and no_work == []


def test_modality_guard(model, real_ct_path, tmp_path, no_work) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "mr.dcm").write_bytes(Path(examples.get_path("mr")).read_bytes())  # a real MR slice
    (inputs / "ct.dcm").write_bytes(Path(real_ct_path).read_bytes())
    _refused(_restore(inputs, "--model", model, "--out", tmp_path / "out"),
             "the model restores ct images (DICOM Modality 'CT')", "1 input(s) are not (1 with Modality 'MR'",
             "mr.dcm", "--force-modality")
    assert not (tmp_path / "out").exists() and no_work == []


def test_force_modality_restores_with_one_warning(model, tmp_path) -> None:
    ds = pydicom.dcmread(examples.get_path("mr"))
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "mr.dcm")
    result = CliRunner().invoke(app, ["restore", str(tmp_path / "in"), "--model", str(model), "--out",
                                      str(tmp_path / "out"), "--regions", "grid", "--no-progress",
                                      "--force-modality"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "1 DICOM input(s) that are not Modality 'CT'" in warnings[0]
    assert pydicom.dcmread(tmp_path / "out" / "mr.dcm").Modality == "MR"


def test_unreadable_headers_fail_on_their_own_turn(model, pngs, tmp_path) -> None:
    """A corrupt file does not stop the up-front checks: it fails alone, the rest is written."""
    (pngs / "broken.png").write_bytes(b"not a png")
    result = _restore(pngs, "--model", model, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "1 written, 1 failed" in result.output and "broken.png" in result.output


def test_slide_with_a_label_map_folder_is_refused_up_front(model, tmp_path, no_work) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "case.svs").write_bytes(b"II*\0" + b"\0" * 64)  # never opened: refused by its suffix
    (tmp_path / "maps").mkdir()
    result = CliRunner().invoke(app, ["restore", str(tmp_path / "in"), "--model", str(model), "--out",
                                      str(tmp_path / "out"), "--regions", str(tmp_path / "maps"), "--no-progress"])
    _refused(result, "1 whole slide(s) need a region backend (--regions NAME)", "maps", "case.svs")
    assert not (tmp_path / "out").exists() and no_work == []
