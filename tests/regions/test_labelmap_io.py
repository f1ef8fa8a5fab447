import numpy as np
import pytest

from ratmir.regions import load_label_map, save_label_map
from ratmir.regions.labelmap_io import label_map_shape


def piecewise_mean_error(image: np.ndarray, labels: np.ndarray) -> float:
    """Mean |image - its per-region mean|: small when the regions follow the image's structures."""
    flat = labels.ravel().astype(np.int64)
    sums = np.bincount(flat, weights=image.ravel().astype(np.float64))
    counts = np.bincount(flat)
    means = sums / np.maximum(counts, 1)
    return float(np.abs(image.ravel() - means[flat]).mean())


def test_reference_label_map_loads_in_the_image_orientation(reference_example):
    sitk = pytest.importorskip("SimpleITK")
    from PIL import Image

    path = reference_example / "indexed_mask.nii"
    labels = load_label_map(path, expected_shape=(512, 512))
    assert labels.dtype == np.int64 and np.unique(labels).tolist() == list(range(1, 40))  # 39 regions
    np.testing.assert_array_equal(labels, sitk.GetArrayFromImage(sitk.ReadImage(str(path))))
    # The regions fit the image as loaded, and fit it much worse transposed.
    image = np.asarray(Image.open(reference_example / "input_img.png"), dtype=np.float64)
    assert piecewise_mean_error(image, labels) < 0.5 * piecewise_mean_error(image, labels.T)


def test_our_files_read_back_the_same_with_simpleitk(reference_example, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    reference = load_label_map(reference_example / "indexed_mask.nii")
    ours = save_label_map(tmp_path / "indexed_mask.nii.gz", reference)
    np.testing.assert_array_equal(load_label_map(ours), reference)
    read = sitk.ReadImage(str(ours))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read), reference)
    assert read.GetPixelID() == sitk.sitkInt32
    # Same geometry as the reference file as SimpleITK sees it.
    ref = sitk.ReadImage(str(reference_example / "indexed_mask.nii"))
    assert read.GetDirection() == ref.GetDirection() and read.GetOrigin() == ref.GetOrigin()


def test_non_square_and_volume_round_trip(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    rng = np.random.default_rng(0)
    for shape in ((5, 7), (3, 5, 7)):
        labels = rng.integers(1, 9, size=shape)
        path = save_label_map(tmp_path / f"m{len(shape)}.nii.gz", labels)
        assert label_map_shape(path) == shape
        np.testing.assert_array_equal(load_label_map(path), labels)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), labels)
    # ... and a 2-D map SimpleITK wrote from an [H, W] array (how the reference was made)
    labels = rng.integers(1, 9, size=(5, 7)).astype(np.float64)
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(tmp_path / "sitk.nii"))
    np.testing.assert_array_equal(load_label_map(tmp_path / "sitk.nii", expected_shape=(5, 7)), labels)


def test_errors_name_the_file(tmp_path):
    path = save_label_map(tmp_path / "m.nii.gz", np.ones((4, 6), np.int64))
    with pytest.raises(ValueError, match=r"m.nii.gz has shape \(4, 6\) but its image has shape \(6, 4\)"):
        load_label_map(path, expected_shape=(6, 4))
    (tmp_path / "bad.nii.gz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read label map .*bad.nii.gz"):
        load_label_map(tmp_path / "bad.nii.gz")
    with pytest.raises(TypeError, match="integer dtype"):
        save_label_map(tmp_path / "f.nii.gz", np.ones((2, 2)))
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.full((2, 2), 1.5), np.eye(4)), str(tmp_path / "frac.nii"))
    with pytest.raises(ValueError, match="frac.nii must hold integer labels"):
        load_label_map(tmp_path / "frac.nii")
