"""Multi-page TIFF stacks: a volume [pages, H, W] decided by the page count, never the shape."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from ratmir.io import read_tiff, read_tiff_stack, write_tiff, write_tiff_stack
from ratmir.io.formats import read_image


def test_stack_round_trip_and_volume(tmp_path) -> None:
    stack = np.random.default_rng(0).integers(0, 4000, (3, 7, 3), dtype=np.uint16)  # W == 3: still grey
    path = write_tiff_stack(tmp_path / "s.tif", stack)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 3 and tif.pages[0].samplesperpixel == 1
    np.testing.assert_array_equal(read_tiff_stack(path), stack)
    image = read_image(path)
    assert image.is_volume and image.spatial_shape == (3, 7, 3)
    rgb = np.random.default_rng(1).integers(0, 255, (2, 5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_tiff_stack(write_tiff_stack(tmp_path / "rgb.tif", rgb)), rgb)
    assert read_image(tmp_path / "rgb.tif").spatial_shape == (2, 5, 6)


def test_single_pages_are_images(tmp_path) -> None:
    grey = np.random.default_rng(2).random((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(read_tiff(write_tiff(tmp_path / "g.tif", grey)), grey)  # unchanged reader
    assert read_tiff_stack(tmp_path / "g.tif").shape == (1, 5, 6)
    planar = np.random.default_rng(3).integers(0, 255, (3, 5, 6), dtype=np.uint8)  # one RGB page, planes apart
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_tiff_stack(tmp_path / "planar.tif")[0], np.moveaxis(planar, 0, -1))
    image = read_image(tmp_path / "planar.tif")
    assert not image.is_volume and image.pixels.shape == (5, 6, 3)
    with tifffile.TiffWriter(tmp_path / "pyramid.tif") as tif:  # a reduced-resolution page is no slice
        tif.write(grey, metadata=None)
        tif.write(grey[::2, ::2], metadata=None, subfiletype=1)
    assert read_tiff_stack(tmp_path / "pyramid.tif").shape == (1, 5, 6)
    assert not read_image(tmp_path / "pyramid.tif").is_volume


def test_stack_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"expects \[pages, H, W\] or \[pages, H, W, 3\], got shape \(5, 6\)"):
        write_tiff_stack(tmp_path / "x.tif", np.zeros((5, 6)))
    with pytest.raises(ValueError, match=r"expects \[H, W\] or \[H, W, 3\], got shape \(2, 5, 6\)"):
        write_tiff(tmp_path / "x.tif", np.zeros((2, 5, 6)))
    tifffile.imwrite(tmp_path / "tzc.tif", np.zeros((2, 3, 5, 6), np.uint8), imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(ValueError, match="expected a stack of 2-D pages, got a TIFF series of axes TZYX"):
        read_tiff_stack(tmp_path / "tzc.tif")
    (tmp_path / "bad.tif").write_bytes(b"II*\0garbage")
    with pytest.raises(ValueError, match="bad.tif: not a readable TIFF"):
        read_tiff_stack(tmp_path / "bad.tif")
