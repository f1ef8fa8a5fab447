from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ratmir.data import PairedDataset, dihedral, pair_paths
from ratmir.data.layout import write_image
from ratmir.regions import save_label_map

H, W = 20, 28


def make_dataset(root, *, names=("a", "b"), channels=1, shape=(H, W)) -> None:
    """Pixel values encode their position, so alignment after crops/flips is checkable."""
    index = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
    for n, name in enumerate(names):
        p = pair_paths(root, "train", name)
        hq = np.repeat(index[..., None], channels, -1) if channels > 1 else index
        write_image(p.hq, hq)
        write_image(p.lq, hq + 0.5 + n)
        save_label_map(p.regions, index.astype(np.int32))
    manifest = {"task": "ct", "channels": channels, "units": "HU", "splits": {"train": list(names), "test": []},
                "normalisation": {"kind": "affine_clip", "low": 0.0, "high": 1000.0, "units": "HU"}}
    (root / "dataset.json").write_text(json.dumps(manifest))


def test_full_images(tmp_path) -> None:
    make_dataset(tmp_path)
    ds = PairedDataset(tmp_path, "train")
    item = ds[1]
    assert item["name"] == "b" and item["lq"].shape == (1, H, W) and item["regions"].dtype == torch.int64
    torch.testing.assert_close(item["lq"] - item["hq"], torch.full((1, H, W), 1.5 / 1000))
    assert torch.equal(item["regions"].float(), (item["hq"][0] * 1000).round())


@pytest.mark.parametrize("channels", [1, 3])
def test_crops_and_augmentation_stay_aligned(tmp_path, channels) -> None:
    make_dataset(tmp_path, channels=channels)
    ds = PairedDataset(tmp_path, "train", patch_size=8, augment=True, seed=3)
    seen = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        item = ds[0]
        assert item["lq"].shape == (channels, 8, 8) and item["regions"].shape == (8, 8)
        torch.testing.assert_close(item["lq"] - item["hq"], torch.full_like(item["lq"], 0.5 / 1000))
        for c in range(channels):
            assert torch.equal(item["regions"].float(), (item["hq"][c] * 1000).round())
        seen.add(item["regions"][0, 0].item())
    assert len(seen) > 1  # crops move between epochs


def test_deterministic_given_seed(tmp_path) -> None:
    make_dataset(tmp_path)
    a = PairedDataset(tmp_path, "train", patch_size=8, augment=True, seed=1)
    b = PairedDataset(tmp_path, "train", patch_size=8, augment=True, seed=1, cache=False)
    c = PairedDataset(tmp_path, "train", patch_size=8, augment=True, seed=2)
    assert torch.equal(a[0]["lq"], b[0]["lq"])
    assert any(not torch.equal(a[i]["lq"], c[i]["lq"]) for i in range(2))


def test_dihedral_group() -> None:
    x = np.arange(12).reshape(3, 4)
    outs = {dihedral(x, k).tobytes() + bytes(dihedral(x, k).shape) for k in range(8)}
    assert len(outs) == 8


def test_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="ratmir prepare"):
        PairedDataset(tmp_path, "train")
    make_dataset(tmp_path)
    with pytest.raises(ValueError, match=r"split must be one of \['test', 'train'\]"):
        PairedDataset(tmp_path, "val")
    with pytest.raises(ValueError, match="smaller than patch_size"):
        PairedDataset(tmp_path, "train", patch_size=64)[0]
    pair_paths(tmp_path, "train", "b").hq.unlink()
    with pytest.raises(FileNotFoundError, match="hq/b.tiff"):
        PairedDataset(tmp_path, "train")
    write_image(pair_paths(tmp_path, "train", "b").hq, np.zeros((H, W + 1), np.float32))
    with pytest.raises(ValueError, match=r"lq/b.tiff has shape \(20, 28\) but its pair .* has \(20, 29\)"):
        PairedDataset(tmp_path, "train")[1]
    pair_paths(tmp_path, "train", "a").lq.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="lq/a.tiff: not a readable TIFF"):
        PairedDataset(tmp_path, "train")[0]


def test_iteration_stops_after_one_epoch(tmp_path) -> None:
    make_dataset(tmp_path)
    ds = PairedDataset(tmp_path, "train")
    assert [item["name"] for item in ds] == ["a", "b"]
    assert ds[2]["name"] == "a"  # index 2 = image 0 of epoch 1
