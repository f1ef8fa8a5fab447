import numpy as np
import pytest
from PIL import Image

from ratmir.regions import read_image
from ratmir.io.formats import find_inputs


def test_png_grey_16bit_and_rgba(tmp_path):
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(tmp_path / "g.png")
    Image.fromarray(np.full((3, 4), 40000, np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(np.zeros((3, 4, 4), np.uint8)).save(tmp_path / "rgba.png")
    g = read_image(tmp_path / "g.png")
    assert g.pixels.shape == (3, 4) and g.pixels[0, 1] == 1 and not g.is_volume
    assert read_image(tmp_path / "g16.png").pixels.max() == 40000
    rgba = read_image(tmp_path / "rgba.png")
    assert rgba.pixels.shape == (3, 4, 3) and rgba.spatial_shape == (3, 4)


def test_tiff_image_rgb_and_stack(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((5, 6), np.float32))
    tifffile.imwrite(tmp_path / "rgb.tiff", np.zeros((5, 6, 3), np.uint8))
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((2, 5, 6), np.uint16))
    assert read_image(tmp_path / "a.tif").spatial_shape == (5, 6)
    assert read_image(tmp_path / "rgb.tiff").spatial_shape == (5, 6)
    stack = read_image(tmp_path / "stack.tif")
    assert stack.is_volume and stack.spatial_shape == (2, 5, 6)


def test_dicom_in_hounsfield_units(real_ct_path):
    image = read_image(real_ct_path)
    assert image.pixels.shape == (128, 128) and image.pixels.dtype == np.float32
    assert image.pixels.min() < -500  # modality LUT applied: air is negative HU


def test_nifti_2d_and_volume_in_simpleitk_order(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(4, 3, 2)  # x, y, z
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), str(tmp_path / "v.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(data[:, :, :1], np.eye(4)), str(tmp_path / "s.nii"))
    vol = read_image(tmp_path / "v.nii.gz")
    assert vol.is_volume and vol.spatial_shape == (2, 3, 4)
    np.testing.assert_array_equal(vol.pixels, data.T)
    flat = read_image(tmp_path / "s.nii")
    assert not flat.is_volume and flat.spatial_shape == (3, 4)


def test_unreadable_and_unsupported_files_name_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"bad.png: cannot read as png"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes.txt: unsupported file type '.txt'"):
        read_image(tmp_path / "notes.txt")


def test_find_inputs(tmp_path, real_ct_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / ".hidden").mkdir()
    for rel in ("d/a.png", "d/sub/b.nii.gz", "d/.hidden/c.png", "d/readme.txt", "d/a.tif"):
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "d" / "sub" / "IM0001").write_bytes(real_ct_path.read_bytes())  # DICOM without suffix
    (tmp_path / "d" / "DICOMDIR").write_bytes(real_ct_path.read_bytes())  # an index: skipped
    items, errors = find_inputs([tmp_path / "d", tmp_path / "missing", tmp_path / "d" / "readme.txt"])
    assert [i.stem for i in items] == ["a", "sub/IM0001", "sub/b"]
    messages = "\n".join(m for _, m in errors)
    assert "missing: no such file or folder" in messages
    assert "readme.txt: unsupported file type '.txt'" in messages
    assert "a.tif: writes the same label map 'a'" in messages
