import numpy as np
import pytest

from ratmir.regions import BACKEND_NAMES, backend_option_names, build_backend


def blobs(shape=(48, 40)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 0.2 + 0.6 * (((yy - 15) ** 2 + (xx - 12) ** 2) < 100) + 0.1 * (xx > 28)
    return np.clip(img + np.random.default_rng(0).normal(0, 0.02, shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("name, options", [
    ("felzenszwalb", {"min_size": 20}), ("slic", {"n_segments": 8}), ("grid", {"block_size": 16}), ("none", {}),
])
@pytest.mark.parametrize("rgb", [False, True])
def test_weight_free_backends_give_int32_labels_from_one(name, options, rgb):
    image = blobs()
    if rgb:
        image = np.stack([image, image * 0.5, 1 - image], axis=-1)
    backend = build_backend(name, **options)
    labels = backend.segment(image)
    assert labels.shape == (48, 40) and labels.dtype == np.int32 and labels.min() == 1
    assert backend.name == name and isinstance(backend.settings(), dict)
    if name != "none":
        assert np.unique(labels).size > 1


def test_felzenszwalb_separates_the_disc():
    labels = build_backend("felzenszwalb", min_size=20).segment(blobs())
    assert labels[15, 12] != labels[45, 5]


def test_grid_blocks():
    labels = build_backend("grid", block_size=16).segment(np.zeros((40, 33), np.float32))
    assert np.unique(labels).size == 3 * 3 and labels[0, 0] == 1 and labels[-1, -1] == 9
    assert labels[15, 15] == 1 and labels[16, 16] == 5


def test_registry_errors():
    with pytest.raises(ValueError, match="backend must be one of"):
        build_backend("watershed")
    with pytest.raises(ValueError, match=r"takes options \('scale', 'sigma', 'min_size'\).*\['n_segments'\]"):
        build_backend("felzenszwalb", n_segments=5)
    with pytest.raises(ValueError, match="min_size must be >= 1"):
        build_backend("felzenszwalb", min_size=0)
    with pytest.raises(TypeError, match="block_size must be an int"):
        build_backend("grid", block_size=1.5)
    assert set(backend_option_names("sam")) >= {"checkpoint", "model_type", "points_per_side", "pred_iou_thresh",
                                                "stability_score_thresh", "crop_n_layers", "min_mask_region_area"}
    assert "none" in BACKEND_NAMES


def test_input_checks():
    backend = build_backend("none")
    with pytest.raises(ValueError, match=r"in \[0, 1\].*apply an intensity window"):
        backend.segment(np.full((4, 4), 300.0))
    with pytest.raises(ValueError, match=r"\[H, W\] or \[H, W, 3\]"):
        backend.segment(np.zeros((2, 4, 4)))
    with pytest.raises(TypeError, match="numpy array"):
        backend.segment([[0.0]])
