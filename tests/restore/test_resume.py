"""`restore --resume`: an interrupted run continues where it stopped and ends with the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from ratmir_testdata import write_tiny_ct_model
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.errors import OutputExistsError
from ratmir.io import read_dicom, write_dicom_like
from ratmir.restore import MANIFEST_NAME, RestoreConfig, RestoreInterrupted, restore_files
from ratmir.restore import files as restore_module


def _series(folder: Path, real_ct_path: Path, *, n: int) -> Path:
    src = read_dicom(real_ct_path)
    for i in range(n):
        ds = src.dataset.copy()
        ds.ImagePositionPatient = [0.0, 0.0, float(i)]
        ds.InstanceNumber = i + 1
        write_dicom_like(ds, src.pixels + 10 * i, folder / f"IM{i}.dcm", series_uid="1.2.3.99")
    return folder


def _config(inputs: Path, model: Path, out: Path, **changes: object) -> RestoreConfig:
    return RestoreConfig(inputs=(inputs,), model=model, out=out, regions="grid", progress=False, **changes)


class _Counter:
    """Wraps ``_Restorer.restore_file``: counts calls, raises KeyboardInterrupt on call ``interrupt_at``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, interrupt_at: int | None = None) -> None:
        self.calls: list[str] = []
        original = restore_module._Restorer.restore_file
        counter = self

        def restore_file(self, item, *, manifest):  # noqa: ANN001, ANN202
            counter.calls.append(item.path.name)
            if len(counter.calls) == interrupt_at:
                raise KeyboardInterrupt
            return original(self, item, manifest=manifest)

        monkeypatch.setattr(restore_module._Restorer, "restore_file", restore_file)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def test_interrupted_series_resumes_to_the_same_bytes(real_ct_path, tmp_path, monkeypatch) -> None:
    inputs = _series(tmp_path / "in", real_ct_path, n=5)
    model = write_tiny_ct_model(tmp_path / "model.safetensors")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _Counter(patch, interrupt_at=3)
        with pytest.raises(RestoreInterrupted, match=r"interrupted: 2 of 5 file\(s\) finished in .*--resume") as info:
            restore_files(_config(inputs, model, out))
    assert info.value.exit_code == 130
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "IM0.dcm", "IM1.dcm"]  # no temporary file left
    # without --resume the finished outputs are refused, with a hint
    with pytest.raises(OutputExistsError, match="2 output file.*already exist.*--resume"):
        restore_files(_config(inputs, model, out))

    resumed = _Counter(monkeypatch)
    report = restore_files(_config(inputs, model, out, resume=True))
    assert report.ok and resumed.calls == ["IM2.dcm", "IM3.dcm", "IM4.dcm"]
    assert [p.name for p in report.skipped] == ["IM0.dcm", "IM1.dcm"] and len(report.written) == 3

    whole = restore_files(_config(inputs, model, tmp_path / "whole"))
    assert whole.ok and len(resumed.calls) == 8
    assert _files(out) == _files(tmp_path / "whole")  # byte-identical, UIDs included
    outs = [pydicom.dcmread(out / f"IM{i}.dcm") for i in range(5)]
    assert len({ds.SeriesInstanceUID for ds in outs}) == 1 and outs[0].SeriesInstanceUID != "1.2.3.99"
    assert len({ds.SOPInstanceUID for ds in outs}) == 5
    assert all(ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID for ds in outs)

    # a finished run resumes to nothing; another model's UIDs differ
    again = _Counter(monkeypatch)
    assert restore_files(_config(inputs, model, out, resume=True)).written == [] and again.calls == []
    other = write_tiny_ct_model(tmp_path / "other.safetensors", seed=1)
    restore_files(_config(inputs, other, tmp_path / "other"))
    assert pydicom.dcmread(tmp_path / "other" / "IM0.dcm").SOPInstanceUID != outs[0].SOPInstanceUID


def test_resume_refuses_outputs_it_did_not_make(real_ct_path, tmp_path, monkeypatch) -> None:
    inputs = _series(tmp_path / "in", real_ct_path, n=2)
    model = write_tiny_ct_model(tmp_path / "model.safetensors")
    out = tmp_path / "out"
    assert restore_files(_config(inputs, model, out)).ok
    before = _files(out)
    # other settings (overlap changes the pixels): nothing matches, every existing output is refused
    with pytest.raises(OutputExistsError, match=r"2 output file\(s\) exist that this model, input and settings did "
                                                r"not make .*--overwrite"):
        restore_files(_config(inputs, model, out, resume=True, overlap=16))
    # a file without a manifest entry, and an edited one
    (out / "IM0.dcm").write_bytes((out / "IM0.dcm").read_bytes() + b"\0\0")
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    del manifest["outputs"]["IM1.dcm"]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(OutputExistsError, match="2 output file.*e.g. .*IM0.dcm"):
        restore_files(_config(inputs, model, out, resume=True))
    # --resume --overwrite: skips what matches, replaces the rest
    counter = _Counter(monkeypatch)
    report = restore_files(_config(inputs, model, out, resume=True, overwrite=True))
    assert report.ok and counter.calls == ["IM0.dcm", "IM1.dcm"]
    assert _files(out) == before
    # an input that changed since: its output no longer counts as finished (refused without --overwrite,
    # restored alone with it)
    (inputs / "IM1.dcm").write_bytes((inputs / "IM1.dcm").read_bytes())
    (inputs / "IM1.dcm").touch()
    with pytest.raises(OutputExistsError, match=r"1 output file\(s\) exist .*IM1.dcm"):
        restore_files(_config(inputs, model, out, resume=True))
    counter = _Counter(monkeypatch)
    report = restore_files(_config(inputs, model, out, resume=True, overwrite=True))
    assert report.ok and counter.calls == ["IM1.dcm"] and [p.name for p in report.skipped] == ["IM0.dcm"]


def test_cli_resume_and_interrupt_exit_codes(real_ct_path, tmp_path, monkeypatch) -> None:
    inputs = _series(tmp_path / "in", real_ct_path, n=3)
    model = write_tiny_ct_model(tmp_path / "model.safetensors")
    args = ["restore", str(inputs), "--model", str(model), "--out", str(tmp_path / "out"), "--regions", "grid",
            "--no-progress"]
    with monkeypatch.context() as patch:
        _Counter(patch, interrupt_at=2)
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1].startswith("Error: interrupted: 1 of 3 file(s) finished")
    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "restore: 2 written, 1 already finished, 0 failed" in result.output

