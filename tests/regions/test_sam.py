"""The sam backend through the real SamAutomaticMaskGenerator, with a tiny random SAM (no checkpoint here)."""

import importlib.util

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("segment_anything")

from ratmir.cli import app  # noqa: E402
from ratmir.regions import (  # noqa: E402
    RegionsConfig, apply_window, load_label_map, masks_to_label_map, parse_window, read_image, resolve_window,
    run_regions,
)
from ratmir.regions import sam as sam_module  # noqa: E402
from ratmir.regions.sam import CHECKPOINT_ENV, SamBackend, load_sam_model  # noqa: E402

GENEROUS = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}


def test_tiny_sam_end_to_end_on_a_real_ct_slice(tiny_sam, real_ct_path):
    image = read_image(real_ct_path)  # real CT in HU
    low, high = resolve_window(image.pixels, spec=parse_window("ct:40,400"))
    image01 = apply_window(image.pixels, low=low, high=high)
    backend = SamBackend(model=tiny_sam, **GENEROUS)
    masks = backend.masks(image01)
    assert len(masks) > 1 and all(m["segmentation"].shape == image.pixels.shape for m in masks)
    labels = backend.segment(image01)
    np.testing.assert_array_equal(labels, masks_to_label_map(masks, shape=image.pixels.shape))
    assert labels.dtype == np.int32 and labels.min() >= 1 and np.unique(labels).size > 1
    settings = backend.settings()
    assert settings["weights"].startswith("state-sha256:") and settings["points_per_side"] == 4


def test_tiny_sam_through_the_runner(tiny_sam, real_ct_path, tmp_path):
    config = RegionsConfig(inputs=(real_ct_path,), out=tmp_path, backend="sam", window="ct:40,400",
                           backend_options={"model": tiny_sam, **GENEROUS}, progress=False)
    report = run_regions(config)
    assert report.ok and report.backend == "sam" and len(report.written) == 1
    labels = load_label_map(report.written[0], expected_shape=(128, 128))
    assert np.unique(labels).size > 1
    assert run_regions(config).skipped == report.written  # same weights -> same key


def test_model_argument_checks(tiny_sam, tmp_path):
    with pytest.raises(ValueError, match="either checkpoint or model"):
        SamBackend(model=tiny_sam, checkpoint=tmp_path / "x.pth")
    with pytest.raises(TypeError, match="segment_anything.modeling.Sam"):
        SamBackend(model=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="sam_model_type must be one of"):
        SamBackend(model=tiny_sam, model_type="vit_s")


@pytest.mark.skipif(importlib.util.find_spec("cv2") is not None, reason="OpenCV is installed")
def test_min_mask_region_area_without_opencv_says_what_to_install(tiny_sam):
    with pytest.raises(ValueError, match="pip install opencv-python-headless"):
        SamBackend(model=tiny_sam, min_mask_region_area=10)


def test_no_checkpoint_configured(monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    with pytest.raises(ValueError, match=f"--sam-checkpoint PATH or set {CHECKPOINT_ENV}"):
        SamBackend()


def test_missing_checkpoint_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINT_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match=r"nope.pth does not exist: .*--sam-checkpoint PATH"):
        load_sam_model(checkpoint=None)


def test_not_a_sam_checkpoint(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="is not a SAM checkpoint"):
        load_sam_model(checkpoint=path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read SAM checkpoint"):
        load_sam_model(checkpoint=path)


def test_checkpoint_of_another_model_type(tmp_path):
    path = tmp_path / "sam_vit_l.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(1024, 3, 1, 1)}, path)
    with pytest.raises(ValueError, match="holds vit_l, not vit_b: pass --sam-model-type vit_l"):
        load_sam_model(checkpoint=path, model_type="vit_b")


def test_loading_a_matching_checkpoint(monkeypatch, tmp_path, tiny_sam):
    """The success path, with the tiny SAM standing in for vit_b (registry and widths patched)."""
    import segment_anything

    from tiny_sam import build_tiny_sam

    path = tmp_path / "tiny.pth"
    torch.save(tiny_sam.state_dict(), path)
    monkeypatch.setitem(sam_module._EMBED_WIDTH, 32, "vit_b")
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", lambda: build_tiny_sam(seed=1))
    model = load_sam_model(checkpoint=path, model_type="vit_b", device="cpu")
    for key, value in tiny_sam.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)
    backend = SamBackend(checkpoint=path, device="cpu", **GENEROUS)
    assert backend.settings()["weights"].startswith("file-sha256:")
    assert backend.segment(np.random.default_rng(0).random((40, 40)).astype(np.float32)).shape == (40, 40)


def test_cli_error_is_one_line(monkeypatch, tmp_path, real_ct_path):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    result = CliRunner().invoke(app, ["regions", str(real_ct_path), "--out", str(tmp_path), "--backend", "sam"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--sam-checkpoint PATH" in lines[0] and CHECKPOINT_ENV in lines[0]
    result = CliRunner().invoke(app, ["regions", str(real_ct_path), "--out", str(tmp_path), "--backend", "sam",
                                      "--sam-checkpoint", str(tmp_path / "missing.pth")])
    assert result.exit_code == 2 and "missing.pth does not exist" in result.output


def test_checkpoint_is_checked_at_once_but_loaded_on_first_image(monkeypatch, tmp_path, tiny_sam):
    """`regions --workers N`: the parent builds the backend (checks, settings) and hands files to
    workers; it must not load SAM itself (one copy per worker on the GPU is enough)."""
    import segment_anything

    from tiny_sam import build_tiny_sam

    path = tmp_path / "tiny.pth"
    torch.save(tiny_sam.state_dict(), path)
    monkeypatch.setitem(sam_module._EMBED_WIDTH, 32, "vit_b")
    builds = []
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", lambda: builds.append(1) or build_tiny_sam(seed=1))
    backend = SamBackend(checkpoint=path, device="cpu", **GENEROUS)
    assert backend.settings()["weights"].startswith("file-sha256:")
    assert builds == []  # what the parent of the workers does: no model built
    backend.segment(np.random.default_rng(0).random((40, 40)).astype(np.float32))
    backend.segment(np.random.default_rng(1).random((40, 40)).astype(np.float32))
    assert builds == [1]
    with pytest.raises(ValueError, match="holds an unknown SAM variant"):  # still checked at once
        torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(7, 3, 1, 1)}, tmp_path / "odd.pth")
        SamBackend(checkpoint=tmp_path / "odd.pth", device="cpu")
