from __future__ import annotations

import json

import numpy as np
import pytest

from ratmir.tasks import CT_NORMALISATION, CTDegradation, calibrate_incident_photons, hu_to_mu, mu_to_hu, simulate_low_dose_ct

N = 96
ROWS, COLS = np.mgrid[:N, :N]
RADIUS2 = (ROWS - N / 2) ** 2 + (COLS - N / 2) ** 2
WATER = np.where(RADIUS2 < (0.4 * N) ** 2, 0.0, -1000.0).astype(np.float32)
ROI = RADIUS2 < (0.25 * N) ** 2
SMALL = dict(n_views=180, pixel_size_mm=2.0, incident_photons=1e4)


def _noise_std(image: np.ndarray) -> float:
    return float((image - WATER)[ROI].std())


def test_quarter_dose_noise_is_twice_full_dose_on_water() -> None:
    full = simulate_low_dose_ct(WATER, config=CTDegradation(dose_fraction=1.0, input_noiseless=True, seed=1, **SMALL)).lq
    quarter = simulate_low_dose_ct(full, config=CTDegradation(dose_fraction=0.25, seed=2, **SMALL)).lq
    ratio = _noise_std(quarter) / _noise_std(full)
    assert 1.7 < ratio < 2.3, ratio
    # the mean stays water: noise only, no bias
    assert abs(float((quarter - WATER)[ROI].mean())) < 0.2 * _noise_std(full)


def test_quarter_dose_from_noiseless_matches_direct_quarter_dose() -> None:
    full = simulate_low_dose_ct(WATER, config=CTDegradation(dose_fraction=1.0, input_noiseless=True, seed=3, **SMALL)).lq
    direct = simulate_low_dose_ct(WATER, config=CTDegradation(dose_fraction=0.25, input_noiseless=True, seed=4, **SMALL)).lq
    assert 1.7 < _noise_std(direct) / _noise_std(full) < 2.3


def test_full_dose_of_a_noisy_slice_adds_nothing() -> None:
    pair = simulate_low_dose_ct(WATER, config=CTDegradation(dose_fraction=1.0, **SMALL))
    np.testing.assert_allclose(pair.lq, WATER, atol=1e-3)


def test_deterministic_given_seed_and_seed_matters() -> None:
    config = CTDegradation(seed=7, **SMALL)
    a = simulate_low_dose_ct(WATER, config=config).lq
    b = simulate_low_dose_ct(WATER, config=config).lq
    c = simulate_low_dose_ct(WATER, config=CTDegradation(seed=8, **SMALL)).lq
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_record_is_json_and_complete() -> None:
    pair = simulate_low_dose_ct(WATER, config=CTDegradation(seed=5, **SMALL))
    record = json.loads(json.dumps(pair.record))
    for key in ("dose_fraction", "incident_photons", "n_views", "pixel_size_mm", "seed", "fbp_filter"):
        assert key in record
    assert record["seed"] == 5 and record["dose_fraction"] == 0.25
    assert record["projector"]["n_detectors"] > N
    assert "astra-toolbox" in record["versions"]
    assert pair.hq.dtype == pair.lq.dtype == np.float32 and pair.lq.shape == WATER.shape


def test_hu_mu_round_trip() -> None:
    hu = np.array([[-1000.0, 0.0], [40.0, 1500.0]], dtype=np.float32)
    np.testing.assert_allclose(mu_to_hu(hu_to_mu(hu)), hu, atol=1e-2)


def test_normalisation_window_and_round_trip() -> None:
    hu = np.array([-2000.0, -1024.0, 0.0, 3072.0, 5000.0], dtype=np.float32)
    y = CT_NORMALISATION.normalise(hu)
    np.testing.assert_allclose(y, [0.0, 0.0, 1024 / 4096, 1.0, 1.0])
    inside = np.array([-1024.0, -500.0, 40.0, 3072.0], dtype=np.float32)
    np.testing.assert_allclose(CT_NORMALISATION.denormalise(CT_NORMALISATION.normalise(inside)), inside, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"dose_fraction": 0.0}, ValueError, "dose_fraction must be > 0.0, got 0.0"),
        ({"dose_fraction": 1.5}, ValueError, "dose_fraction must be <= 1.0, got 1.5"),
        ({"dose_fraction": "0.25"}, TypeError, "dose_fraction must be a number"),
        ({"n_views": 0}, ValueError, "n_views must be >= 1, got 0"),
        ({"incident_photons": -1.0}, ValueError, "incident_photons must be > 0.0"),
        ({"fbp_filter": "bogus"}, ValueError, "fbp_filter must be one of"),
        ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
    ],
)
def test_bad_config(kwargs: dict, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        CTDegradation(**kwargs)


def test_bad_input() -> None:
    config = CTDegradation(**SMALL)
    with pytest.raises(TypeError, match="floating dtype, got int16"):
        simulate_low_dose_ct(WATER.astype(np.int16), config=config)
    with pytest.raises(ValueError, match=r"2 dimensions \[H, W\], got shape \(1, 96, 96\)"):
        simulate_low_dose_ct(WATER[None], config=config)
    bad = WATER.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN/Inf"):
        simulate_low_dose_ct(bad, config=config)
    with pytest.raises(ValueError, match="Hounsfield units"):
        simulate_low_dose_ct(WATER + 30000, config=config)
    with pytest.raises(TypeError, match="must be a numpy.ndarray, got list"):
        simulate_low_dose_ct([[0.0]], config=config)
    with pytest.raises(TypeError, match="config must be a CTDegradation, got dict"):
        simulate_low_dose_ct(WATER, config={})


def test_calibrated_photon_count_reproduces_the_slice_noise() -> None:
    truth = CTDegradation(dose_fraction=1.0, input_noiseless=True, seed=11, **SMALL)
    noisy = simulate_low_dose_ct(WATER, config=truth).lq
    roi = (slice(36, 60), slice(36, 60))
    start = CTDegradation(**{**SMALL, "incident_photons": 1e6})
    estimate = calibrate_incident_photons(noisy, roi=roi, config=start)
    assert estimate == pytest.approx(1e4, rel=0.3)
