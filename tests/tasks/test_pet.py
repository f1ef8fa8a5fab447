from __future__ import annotations

import json

import numpy as np
import pytest

from ratmir.tasks import (
    PET_NORMALISATION,
    MNI152Tissues,
    ParallelBeamProjector,
    PETAcquisition,
    PETPhantom,
    PETPhantomConfig,
    load_mni152_tissues,
    make_pet_phantom,
    mni152_template_paths,
    non_air_slices,
    osem,
    simulate_pet,
)

# 4 mm pixels on a 64 x 64 grid: the real anatomy at a size that simulates in ~0.1 s
SMALL_PHANTOM = PETPhantomConfig(pixel_size_mm=4, grid_size=64, lesion_radius_mm=(5.0, 7.0), seed=3)
SMALL_SCAN = PETAcquisition(n_views=60, n_subsets=6, n_iterations=3, sensitivity=20.0, seed=1)


@pytest.fixture(scope="module")
def tissues() -> MNI152Tissues:
    return load_mni152_tissues()


@pytest.fixture(scope="module")
def phantom(tissues: MNI152Tissues) -> PETPhantom:
    return make_pet_phantom(tissues, slice_index=90, config=SMALL_PHANTOM)


def test_templates_are_bundled_in_the_nilearn_wheel() -> None:
    paths = mni152_template_paths()
    assert set(paths) == {"gm", "wm", "t1"} and all(p.is_file() for p in paths.values())


def test_phantom_uptake_ratios_and_lesions(tissues: MNI152Tissues, phantom: PETPhantom) -> None:
    full = make_pet_phantom(tissues, slice_index=90, config=PETPhantomConfig(n_lesions=0))
    gm = tissues.axial("gm", 90)
    assert gm.shape == (233, 197)
    assert full.activity.shape == (128, 128) and full.activity.dtype == np.float32
    assert full.record["gm_activity"] / full.record["wm_activity"] == 4.0
    assert not full.lesions.any() and full.record["lesions"] == []
    assert len(phantom.record["lesions"]) == 3
    assert phantom.lesions.any()
    assert phantom.activity[phantom.lesions].max() == pytest.approx(20.0, rel=1e-3)
    assert phantom.attenuation.max() == pytest.approx(0.015, rel=1e-3)
    assert phantom.activity[phantom.attenuation == 0].max() == 0.0


def test_phantom_lesions_are_seeded(tissues: MNI152Tissues) -> None:
    a = make_pet_phantom(tissues, slice_index=80, config=SMALL_PHANTOM)
    b = make_pet_phantom(tissues, slice_index=80, config=SMALL_PHANTOM)
    c = make_pet_phantom(tissues, slice_index=80, config=PETPhantomConfig(pixel_size_mm=4, grid_size=64, seed=4))
    assert a.record["lesions"] == b.record["lesions"] != c.record["lesions"]


def test_count_ratio_is_the_dose_reduction(phantom: PETPhantom) -> None:
    pair = simulate_pet(phantom, config=SMALL_SCAN)
    record = json.loads(json.dumps(pair.record))
    assert record["low_dose_counts"] > 10_000
    assert record["count_ratio"] == pytest.approx(12.0, rel=0.04)
    assert record["dose_reduction"] == 12.0 and record["seed"] == 1 and record["units"] == "kBq/mL"
    assert record["phantom"]["slice_index"] == 90 and "astra-toolbox" in record["versions"]
    assert pair.hq.shape == pair.lq.shape == (64, 64) and pair.hq.dtype == np.float32
    # both reconstructions are in activity units: similar totals
    assert pair.lq.sum() == pytest.approx(pair.hq.sum(), rel=0.1)
    # lesions stand out in the full-dose image
    brain = phantom.activity > 1.5
    assert pair.hq[phantom.lesions].mean() > 1.3 * pair.hq[brain].mean()
    # the low-dose image is noisier
    truth_error = lambda img: float(np.abs(img - phantom.activity)[brain].mean())  # noqa: E731
    assert truth_error(pair.lq) > truth_error(pair.hq)


def test_deterministic_given_seed(phantom: PETPhantom) -> None:
    a, b = simulate_pet(phantom, config=SMALL_SCAN), simulate_pet(phantom, config=SMALL_SCAN)
    np.testing.assert_array_equal(a.lq, b.lq)
    assert a.record == b.record


def test_osem_converges_on_noiseless_data() -> None:
    rows, cols = np.mgrid[:32, :32]
    truth = np.where((rows - 16) ** 2 + (cols - 16) ** 2 < 12**2, 1.0, 0.0).astype(np.float32)
    truth[12:16, 12:16] = 3.0
    projector = ParallelBeamProjector(shape=(32, 32), n_views=48, n_detectors=48)
    factors = np.exp(-projector.forward(truth * 0.05))
    data = 100.0 * factors * projector.forward(truth)
    errors = [
        float(np.abs(osem(data, projector=projector, attenuation_factors=factors, sensitivity=100.0,
                          n_iterations=k, n_subsets=8) - truth).mean())
        for k in (1, 3, 10)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1


def test_non_air_slices() -> None:
    volume = np.zeros((5, 8, 8), dtype=np.float32)
    volume[1, 2:6, 2:6] = 5.0
    volume[3, 0, 0] = 5.0  # a single hot pixel is below 5% of the slice
    assert non_air_slices(volume, threshold=1.0, min_fraction=0.05) == [1]


def test_normalisation_round_trip() -> None:
    x = np.array([0.0, 2.5, 10.0, 29.0], dtype=np.float32)
    np.testing.assert_allclose(PET_NORMALISATION.denormalise(PET_NORMALISATION.normalise(x)), x, rtol=1e-6)
    assert PET_NORMALISATION.normalise(np.array([-1.0, 60.0])).tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"dose_reduction": 0.5}, ValueError, "dose_reduction must be >= 1.0, got 0.5"),
        ({"n_subsets": 200}, ValueError, r"n_subsets must be <= n_views \(180\), got 200"),
        ({"sensitivity": 0}, ValueError, "sensitivity must be > 0.0"),
        ({"n_iterations": 1.5}, TypeError, "n_iterations must be an int, got float"),
    ],
)
def test_bad_config(kwargs: dict, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        PETAcquisition(**kwargs)


def test_bad_input(tissues: MNI152Tissues, phantom: PETPhantom) -> None:
    with pytest.raises(TypeError, match="phantom must be a PETPhantom, got ndarray"):
        simulate_pet(phantom.activity, config=SMALL_SCAN)
    bad = PETPhantom(activity=phantom.activity[:10], attenuation=phantom.attenuation,
                     lesions=phantom.lesions, pixel_size_mm=4.0, record={})
    with pytest.raises(ValueError, match=r"of one shape, got \(10, 64\)"):
        simulate_pet(bad, config=SMALL_SCAN)
    with pytest.raises(ValueError, match="slice index must be in"):
        tissues.axial("gm", 500)
