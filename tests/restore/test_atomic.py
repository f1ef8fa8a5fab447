"""An interrupted write leaves nothing under the output's final name, and no temporary file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ratmir_testdata import write_tiny_ct_model

from ratmir.io import write_nifti
from ratmir.models import DnCNN, save_pretrained
from ratmir.restore import RestoreConfig, RestoreInterrupted, restore_files
from ratmir.tasks import get_task


def test_ctrl_c_while_writing_a_volume(tmp_path, monkeypatch) -> None:
    import nibabel

    write_nifti(tmp_path / "in" / "vol.nii.gz", np.random.default_rng(0).normal(0, 50, (3, 24, 20)), affine=np.eye(4))
    model = write_tiny_ct_model(tmp_path / "model.safetensors")
    real_save = nibabel.save

    def save_then_interrupt(image, filename):  # noqa: ANN001, ANN202 - half a file, then Ctrl-C
        real_save(image, filename)
        with open(filename, "r+b") as f:
            f.truncate(100)
        raise KeyboardInterrupt

    monkeypatch.setattr(nibabel, "save", save_then_interrupt)
    with pytest.raises(RestoreInterrupted, match=r"interrupted: 0 of 1 file\(s\) finished"):
        restore_files(RestoreConfig(inputs=(tmp_path / "in",), model=model, out=tmp_path / "out", regions="grid",
                                    progress=False))
    assert list((tmp_path / "out").iterdir()) == []  # neither the volume nor a temporary file


def test_ctrl_c_while_writing_a_whole_slide(tmp_path) -> None:
    pytest.importorskip("openslide")
    import tifffile

    from ratmir.io import SlideReader
    from ratmir.regions import build_backend, parse_window
    from ratmir.restore.slides import restore_slide

    torch.manual_seed(0)
    model = DnCNN(in_channels=3, features=4, depth=3)
    slide = tmp_path / "case.svs"
    tifffile.imwrite(slide, np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8),
                     tile=(256, 256), photometric="rgb")
    calls = []
    forward = model.forward

    def interrupt_on_third_tile(x, regions=None):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return forward(x, regions)

    model.forward = interrupt_on_third_tile
    out = tmp_path / "out" / "case.tiff"
    kwargs = {"model": model, "normalisation": get_task("pathology").normalisation,
              "backend": build_backend("grid"), "window": parse_window("auto"), "tile": 256}
    with pytest.raises(KeyboardInterrupt):
        restore_slide(slide, out, **kwargs)
    assert list(out.parent.iterdir()) == []  # tiles were streamed to a temporary file, now removed
    model.forward = forward
    seen = []
    assert restore_slide(slide, out, on_written=lambda tmp: seen.append(tmp.stat().st_size), **kwargs) == out
    assert seen == [out.stat().st_size] and [p.name for p in out.parent.iterdir()] == ["case.tiff"]
    with SlideReader(out) as restored:
        assert restored.dimensions == (600, 600)


def test_manifest_entry_precedes_the_output(tmp_path) -> None:
    """The manifest is written before the rename: a listed output matches its recorded stamp."""
    from ratmir.restore import MANIFEST_NAME
    from ratmir.restore.manifest import file_stamp

    write_nifti(tmp_path / "in" / "a.nii.gz", np.zeros((2, 16, 16)), affine=np.eye(4))
    meta = {"task": "pet", "normalisation": json.dumps(get_task("pet").normalisation.record())}
    model = save_pretrained(DnCNN(features=4, depth=3), tmp_path / "pet.safetensors", metadata=meta)
    assert restore_files(RestoreConfig(inputs=(tmp_path / "in",), model=model, out=tmp_path / "out", regions="grid",
                                       progress=False)).ok
    entry = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())["outputs"]["a.nii.gz"]
    assert entry["output"] == file_stamp(tmp_path / "out" / "a.nii.gz")
    assert entry["made_from"]["settings"]["task"] == "pet" and len(entry["made_from"]["model_sha256"]) == 64
