"""``ratmir regions`` end to end: folders, failures, the up-to-date skip, overlays, sharding, workers."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.regions import RegionsConfig, load_label_map, run_regions, save_label_map
from ratmir.regions.batch import resolve_backend_name, select_backend_options, shard_from_env
from ratmir.regions.sam import CHECKPOINT_ENV


def write_png(path, seed=0, shape=(32, 40)):
    rng = np.random.default_rng(seed)
    img = np.zeros(shape, np.uint8)
    img[: shape[0] // 2] = 200
    img = np.clip(img + rng.integers(0, 20, shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    write_png(d / "a.png", 0)
    write_png(d / "nested" / "b.png", 1, shape=(24, 24))
    (d / "corrupt.png").write_bytes(b"\x89PNG truncated")
    return d


def invoke(*args):
    return CliRunner().invoke(app, ["regions", *map(str, args)])


def test_cli_folder_with_one_corrupt_file(folder, tmp_path):
    out = tmp_path / "out"
    result = invoke(folder, "--out", out, "--backend", "felzenszwalb", "--fz-min-size", 20, "--overlay")
    assert result.exit_code == 1, result.output
    assert "2 written, 0 up to date, 1 failed" in result.output
    assert "FAILED" in result.output and "corrupt.png: cannot read as png" in result.output
    a = load_label_map(out / "a.nii.gz", expected_shape=(32, 40))
    b = load_label_map(out / "nested" / "b.nii.gz", expected_shape=(24, 24))
    assert a.min() >= 1 and b.min() >= 1 and np.unique(a).size > 1
    assert (out / "a.png").is_file() and (out / "nested" / "b.png").is_file()
    assert Image.open(out / "a.png").size == (40, 32)
    record = json.loads((out / "a.regions.json").read_text())
    assert record["backend"] == "felzenszwalb" and record["settings"]["min_size"] == 20
    assert record["window"] == {"spec": "auto", "low": 0.0, "high": 255.0}
    assert record["shape"] == [32, 40] and record["num_regions"] == int(np.unique(a).size)
    assert not (out / "corrupt.nii.gz").exists()


def test_cli_all_good_exits_zero(tmp_path):
    write_png(tmp_path / "x.png")
    result = invoke(tmp_path / "x.png", "-o", tmp_path / "o", "--backend", "grid", "--grid-size", 8)
    assert result.exit_code == 0 and "1 written" in result.output
    assert np.unique(load_label_map(tmp_path / "o" / "x.nii.gz")).size == 4 * 5


def test_up_to_date_skip(tmp_path):
    image = write_png(tmp_path / "in" / "a.png")
    out = tmp_path / "out"

    def run(**kw):
        base = dict(inputs=(tmp_path / "in",), out=out, backend="slic", backend_options={"n_segments": 4},
                    progress=False)
        return run_regions(RegionsConfig(**{**base, **kw}))

    first = run()
    assert len(first.written) == 1
    stamp = os.stat(out / "a.nii.gz").st_mtime_ns
    second = run()
    assert second.skipped == first.written and not second.written
    assert os.stat(out / "a.nii.gz").st_mtime_ns == stamp
    assert run(backend_options={"n_segments": 9}).written  # other settings
    assert run(backend_options={"n_segments": 9}).skipped
    assert run(backend_options={"n_segments": 9}, window="percentile:1,99").written  # other window
    write_png(image, seed=5)  # other content
    assert run(window="percentile:1,99", backend_options={"n_segments": 9}).written
    assert run(window="percentile:1,99", backend_options={"n_segments": 9}, force=True).written
    assert run(window="percentile:1,99", backend_options={"n_segments": 9}, overlay=True).written  # no overlay yet
    assert run(window="percentile:1,99", backend_options={"n_segments": 9}, overlay=True).skipped


def test_label_map_that_no_longer_matches_its_image_is_an_error(tmp_path):
    write_png(tmp_path / "in" / "a.png")
    write_png(tmp_path / "in" / "b.png")
    out = tmp_path / "out"
    assert invoke(tmp_path / "in", "-o", out, "--backend", "none").exit_code == 0
    save_label_map(out / "a.nii.gz", np.ones((5, 5), np.int32))  # replaced by something else
    result = invoke(tmp_path / "in", "-o", out, "--backend", "none")
    assert result.exit_code == 1 and "0 written, 1 up to date, 1 failed" in result.output
    assert "a.nii.gz has shape (5, 5) but its image" in result.output and "a.png has shape (32, 40)" in result.output
    assert invoke(tmp_path / "in", "-o", out, "--backend", "none", "--force").exit_code == 0


def test_volume_slice_by_slice(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    rng = np.random.default_rng(0)
    vol = np.zeros((20, 16, 3), np.float32)  # nibabel order x, y, z -> [D=3, H=16, W=20]
    vol[:10] = 500
    vol += rng.normal(0, 5, vol.shape).astype(np.float32)
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    nibabel.save(nibabel.Nifti1Image(vol, affine), str(tmp_path / "ct.nii.gz"))
    report = run_regions(RegionsConfig(inputs=(tmp_path / "ct.nii.gz",), out=tmp_path / "o", backend="felzenszwalb",
                                       backend_options={"scale": 10.0, "min_size": 10}, window="range:-100,600",
                                       overlay=True, progress=False))
    assert report.ok
    labels = load_label_map(tmp_path / "o" / "ct.nii.gz", expected_shape=(3, 16, 20))
    assert all(s[0, 0] != s[0, -1] for s in labels)  # bright left half vs dark right half, per slice
    np.testing.assert_allclose(nibabel.load(str(tmp_path / "o" / "ct.nii.gz")).affine, affine)
    assert sorted(p.name for p in (tmp_path / "o").glob("*.png")) == [f"ct_z000{i}.png" for i in range(3)]
    counts = json.loads((tmp_path / "o" / "ct.regions.json").read_text())["num_regions"]
    assert counts == [int(np.unique(s).size) for s in labels]


def test_sharding_by_rank(tmp_path, monkeypatch):
    for i in range(5):
        write_png(tmp_path / "in" / f"im{i}.png", i)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    report = run_regions(RegionsConfig(inputs=(tmp_path / "in",), out=tmp_path / "o", backend="none", progress=False))
    assert (report.rank, report.world_size) == (1, 2)
    assert sorted(p.name for p in report.written) == ["im1.nii.gz", "im3.nii.gz"]
    monkeypatch.setenv("RANK", "7")
    monkeypatch.setenv("WORLD_SIZE", "8")  # more ranks than files: this rank has nothing to do
    report = run_regions(RegionsConfig(inputs=(tmp_path / "in",), out=tmp_path / "o", backend="none", progress=False))
    assert report.ok and not report.written and not report.skipped


def test_shard_env_errors():
    assert shard_from_env({}) == (0, 1)
    with pytest.raises(ValueError, match="0 <= RANK < WORLD_SIZE, got RANK=2, WORLD_SIZE=2"):
        shard_from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="must be integers"):
        shard_from_env({"RANK": "x"})


def test_backend_choice_and_options(monkeypatch, tmp_path):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    assert resolve_backend_name("auto", options={}) == "felzenszwalb"
    assert resolve_backend_name("auto", options={"checkpoint": "x.pth"}) == "sam"
    monkeypatch.setenv(CHECKPOINT_ENV, str(tmp_path / "sam.pth"))
    assert resolve_backend_name("auto", options={}) == "sam"
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend_name("watershed", options={})
    given = {("slic", "n_segments", "--slic-n-segments"): 5, ("grid", "block_size", "--grid-size"): None}
    assert select_backend_options("slic", given=given) == {"n_segments": 5}
    with pytest.raises(ValueError, match="--slic-n-segments applies to backend 'slic', but the backend is 'grid'"):
        select_backend_options("grid", given=given)


def test_cli_configuration_errors(tmp_path):
    write_png(tmp_path / "x.png")
    result = invoke(tmp_path / "x.png", "-o", tmp_path / "o", "--window", "ct:40")
    assert result.exit_code == 2 and "two finite numbers" in result.output
    result = invoke(tmp_path / "x.png", "-o", tmp_path / "o", "--workers", 0)
    assert result.exit_code == 2 and "workers must be >= 1" in result.output
    (tmp_path / "empty").mkdir()
    result = invoke(tmp_path / "empty", "-o", tmp_path / "o", "--backend", "none")
    assert result.exit_code == 2 and "no supported images found" in result.output
    result = invoke(tmp_path / "nope.png", "-o", tmp_path / "o", "--backend", "none")
    assert result.exit_code == 1 and "nope.png: no such file or folder" in result.output


@pytest.mark.slow
def test_worker_processes(folder, tmp_path):
    serial = run_regions(RegionsConfig(inputs=(folder,), out=tmp_path / "s", backend="felzenszwalb", progress=False))
    parallel = run_regions(RegionsConfig(inputs=(folder,), out=tmp_path / "p", backend="felzenszwalb", workers=2,
                                         progress=False))
    assert len(parallel.written) == 2 and len(parallel.failures) == 1
    assert "corrupt.png" in parallel.failures[0][1]
    for path in serial.written:
        twin = tmp_path / "p" / path.relative_to(tmp_path / "s")
        np.testing.assert_array_equal(load_label_map(path), load_label_map(twin))


def test_large_slices_are_partitioned_block_by_block() -> None:
    """A slice larger than ``block`` is cut into near-equal blocks, each segmented alone: labels
    never cross a block border and never repeat between blocks; small slices are untouched."""
    from ratmir.regions import build_backend
    from ratmir.regions.batch import segment_blocks

    backend = build_backend("felzenszwalb", min_size=20)
    image = np.random.default_rng(0).random((70, 45), dtype=np.float32)
    np.testing.assert_array_equal(segment_blocks(image, backend=backend, block=70), backend.segment(image))
    labels = segment_blocks(image, backend=backend, block=32)  # 3 x 2 blocks: rows 0/23/46/70, cols 0/22/45
    rows, cols = [0, 23, 46, 70], [0, 22, 45]
    seen: set[int] = set()
    for y0, y1 in zip(rows[:-1], rows[1:]):
        for x0, x1 in zip(cols[:-1], cols[1:]):
            block_labels = set(np.unique(labels[y0:y1, x0:x1]).tolist())
            assert not block_labels & seen
            seen |= block_labels
            # within a block, the partition is the backend's own on that block
            ours, theirs = labels[y0:y1, x0:x1], backend.segment(image[y0:y1, x0:x1])
            assert len(np.unique(ours)) == len(np.unique(theirs))
            pairs = np.unique(np.stack([ours.ravel(), theirs.ravel()]), axis=1)
            assert pairs.shape[1] == len(np.unique(theirs))  # one-to-one relabelling
    assert sorted(seen) == list(range(len(seen)))
