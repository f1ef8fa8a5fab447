from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ratmir.data import PairedDataset
from ratmir.engine.region_sources import RegionProvider, parse_region_source, region_source_names
from ratmir.engine.study import derive_dataset
from ratmir.regions import BACKEND_NAMES


def test_names_follow_the_backend_registry() -> None:
    assert set(BACKEND_NAMES) <= set(region_source_names())
    with pytest.raises(ValueError, match="region source must be one of"):
        parse_region_source("nope")
    s = parse_region_source({"name": "fz-fine", "backend": "felzenszwalb", "options": {"scale": 50}})
    assert (s.name, s.kind, dict(s.options)) == ("fz-fine", "felzenszwalb", {"scale": 50})
    with pytest.raises(ValueError, match="needs 'backend'"):
        parse_region_source({"name": "x"})


def test_perturbed_sources(tiny_dataset) -> None:
    ds = PairedDataset(tiny_dataset, "test")
    item = ds[0]
    stored = item["regions"]
    assert torch.equal(RegionProvider("dataset", ds)(0, item), stored)
    shuffled = RegionProvider("shuffled", ds)(0, item)
    assert torch.equal(shuffled, RegionProvider("shuffled", ds)(0, item))  # seeded per image
    assert not torch.equal(shuffled, stored)
    assert torch.equal(torch.bincount(shuffled.flatten()), torch.bincount(stored.flatten()))  # same region sizes
    shifted = RegionProvider("shifted", ds)(0, item)
    assert torch.equal(shifted[16:, 16:], stored[:16, :16])
    none = RegionProvider("none", ds)(0, item)
    assert none.shape == stored.shape and torch.unique(none).tolist() == [1]
    grid = RegionProvider({"backend": "grid", "options": {"block_size": 8}}, ds)
    assert torch.unique(grid(0, item)).numel() == 16 and grid.record()["options"] == {"block_size": 8}


def test_backend_source_reproduces_a_derived_dataset(tiny_dataset, tmp_path) -> None:
    derived = derive_dataset(tiny_dataset, out=tmp_path / "fz", backend="felzenszwalb", options={"min_size": 16},
                             progress=False)
    manifest = json.loads((derived / "dataset.json").read_text())
    assert manifest["regions"]["backend"] == "felzenszwalb" and manifest["derived_from"] == str(tiny_dataset)
    ds = PairedDataset(derived, "test")
    assert torch.equal(ds[0]["lq"], PairedDataset(tiny_dataset, "test")[0]["lq"])  # same images
    provider = RegionProvider("felzenszwalb", ds)  # built with the dataset's recorded settings
    assert provider.record()["options"]["min_size"] == 16
    for i, item in enumerate(ds):
        assert np.array_equal(provider(i, item).numpy(), item["regions"].numpy())
    # rerun: nothing recomputed
    before = {p: p.stat().st_mtime_ns for p in (derived / "test" / "regions").glob("*.nii.gz")}
    derive_dataset(tiny_dataset, out=derived, backend="felzenszwalb", options={"min_size": 16}, progress=False)
    assert before == {p: p.stat().st_mtime_ns for p in (derived / "test" / "regions").glob("*.nii.gz")}


def test_derived_dataset_of_a_dataset_with_an_empty_split(tmp_path) -> None:
    from ratmir_testdata import write_tiny_dataset

    source = write_tiny_dataset(tmp_path / "src", val=0)  # 'val' listed with no image, as prepare can leave it
    derived = derive_dataset(source, out=tmp_path / "grid", backend="grid", options={"block_size": 8}, progress=False)
    manifest = json.loads((derived / "dataset.json").read_text())
    assert manifest["splits"]["val"] == [] and manifest["regions"]["backend"] == "grid"
    assert len(list((derived / "test" / "regions").glob("*.nii.gz"))) == 2
