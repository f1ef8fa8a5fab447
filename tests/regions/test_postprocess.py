import numpy as np
import pytest

from ratmir.regions import masks_to_label_map
from ratmir.regions import postprocess


def random_masks(rng: np.random.Generator, *, n: int, shape: tuple[int, int]) -> list[dict]:
    """Overlapping random rectangles and blobs, with SAM's record layout."""
    h, w = shape
    masks = []
    for _ in range(n):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        y1, x1 = rng.integers(y0 + 1, h + 1), rng.integers(x0 + 1, w + 1)
        seg = np.zeros(shape, dtype=bool)
        seg[y0:y1, x0:x1] = True
        seg &= rng.random(shape) > 0.2
        masks.append({"segmentation": seg, "area": int(seg.sum())})
    return masks


def reference_rule(masks, shape):
    """The reference rule as a direct loop: paint largest first, background = len + 1."""
    ordered = sorted(masks, key=lambda m: m["area"], reverse=True)
    labels = np.full(shape, len(ordered) + 1, dtype=np.int64)
    for i, m in enumerate(ordered):
        labels[m["segmentation"]] = i + 1
    return labels


@pytest.mark.parametrize("seed", range(5))
def test_matches_direct_loop_on_random_overlapping_masks(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
    masks = random_masks(rng, n=int(rng.integers(1, 25)), shape=shape)
    if seed % 2:  # equal areas: a stable sort keeps the input order
        masks += [dict(masks[0]), {"segmentation": masks[0]["segmentation"].copy(), "area": masks[0]["area"]}]
    out = masks_to_label_map(masks)
    assert out.dtype == np.int32 and out.shape == shape
    np.testing.assert_array_equal(out, reference_rule(masks, shape))


def test_chunked_painting_matches(monkeypatch):
    rng = np.random.default_rng(7)
    masks = random_masks(rng, n=30, shape=(16, 16))
    monkeypatch.setattr(postprocess, "_CHUNK_BYTES", 3 * 256)  # 3 masks per chunk
    np.testing.assert_array_equal(masks_to_label_map(masks), reference_rule(masks, (16, 16)))


def test_smallest_mask_wins_and_uncovered_is_background():
    big = np.zeros((4, 4), bool)
    big[:, :2] = True
    small = np.zeros((4, 4), bool)
    small[0, 0] = True
    out = masks_to_label_map([{"segmentation": small, "area": 1}, {"segmentation": big, "area": 8}])
    assert out[0, 0] == 2 and out[1, 0] == 1 and (out[:, 2:] == 3).all()


def test_area_computed_when_missing():
    a = np.zeros((3, 3), bool)
    a[0] = True
    b = np.ones((3, 3), bool)
    assert (masks_to_label_map([{"segmentation": a}, {"segmentation": b}])[0] == 2).all()


def test_empty_list_is_one_region():
    out = masks_to_label_map([], shape=(3, 5))
    assert out.shape == (3, 5) and (out == 1).all()
    with pytest.raises(ValueError, match="shape"):
        masks_to_label_map([])


def test_bad_inputs_name_the_problem():
    with pytest.raises(TypeError, match="list of mask dicts"):
        masks_to_label_map({"segmentation": np.ones((2, 2), bool)})
    with pytest.raises(TypeError, match=r"masks\[0\]"):
        masks_to_label_map([np.ones((2, 2), bool)])
    with pytest.raises(ValueError, match=r"masks\[1\].*shape \(3, 3\)"):
        masks_to_label_map([{"segmentation": np.ones((2, 2), bool)}, {"segmentation": np.ones((3, 3), bool)}])
    with pytest.raises(TypeError, match="binary_mask"):
        masks_to_label_map([{"segmentation": {"counts": [4], "size": [2, 2]}}])
    with pytest.raises(ValueError, match="expected \\(4, 4\\)"):
        masks_to_label_map([{"segmentation": np.ones((2, 2), bool)}], shape=(4, 4))
