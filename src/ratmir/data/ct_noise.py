"""Noise in real CT slices: the most uniform soft-tissue region, the slice's own noise level
and the full-dose photon count that reproduces it (for ``prepare``'s quarter-dose simulation
and for the noise measurements in docs/data.md), and which slices hold enough soft tissue in
the scored window to be worth scoring.

Default noise model of ``prepare`` (:data:`DEFAULT_FULL_DOSE_NOISE_HU`): each subject's full-dose
photon count ``I0`` is calibrated so that the simulated *full-dose* acquisition has a noise std of
12 HU in the most uniform soft-tissue region: a thin-slice, sharp-kernel full-dose scan like the
AAPM-Mayo challenge's, where the embedded clinical slices are smooth (2-6 HU). The quarter dose
has 4x fewer photons (``dose_fraction`` 0.25), so 2x that noise std; since the slice already is
the full-dose image, only the extra variance (``sqrt(3) x 12`` ~ 21 HU in that region) is added.
12 HU is chosen so that the low-dose input scores in the regime the AAPM-Mayo quarter-dose papers
report (ct_window PSNR ~29 dB, SSIM ~0.86, docs/data.md); it is a stated assumption, not a
measurement of a scanner.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import ndimage

from ..conventions import CT_WINDOW_HU
from ..tasks.ct import CTDegradation, calibrate_incident_photons

#: Soft tissue / brain / water: where a uniform region shows the noise, not anatomy.
SOFT_TISSUE_HU = (-100.0, 150.0)
ROI_SIZE = 24
#: Full-dose noise std (HU, uniform soft tissue) that ``prepare`` emulates by default.
DEFAULT_FULL_DOSE_NOISE_HU = 12.0
#: The window of the ``ct_window`` convention (RED-CNN/CTformer), where CT results are scored.
SCORED_WINDOW_HU = CT_WINDOW_HU
#: Slices with less of their area inside :data:`SCORED_WINDOW_HU` are left out of the dataset.
MIN_SCORED_FRACTION = 0.2


def scored_fraction(hu: np.ndarray, *, window: tuple[float, float] = SCORED_WINDOW_HU) -> float:
    """Fraction of the pixels of ``hu`` inside ``window``: the soft tissue a windowed PSNR/SSIM
    sees. Outside it both images clip to the same value, so a slice with little soft tissue
    (skull vertex, air) scores tens of dB higher whatever the noise."""
    hu = np.asarray(hu)
    return float(((hu >= window[0]) & (hu <= window[1])).mean())


def most_uniform_roi(hu: np.ndarray, *, size: int = ROI_SIZE,
                     hu_range: tuple[float, float] = SOFT_TISSUE_HU) -> tuple[slice, slice] | None:
    """The ``size`` x ``size`` window of ``hu`` lying wholly in ``hu_range`` with the smallest
    standard deviation, or None when no such window exists."""
    hu = np.asarray(hu, dtype=np.float64)
    if hu.ndim != 2 or min(hu.shape) < size:
        raise ValueError(f"hu must be [H, W] with H, W >= {size}, got shape {hu.shape}")
    inside = (hu >= hu_range[0]) & (hu <= hu_range[1])
    valid = ndimage.minimum_filter(inside.astype(np.uint8), size=size, mode="constant", cval=0).astype(bool)
    if not valid.any():
        return None
    mean = ndimage.uniform_filter(hu, size=size, mode="reflect")
    var = ndimage.uniform_filter(hu * hu, size=size, mode="reflect") - mean * mean
    var[~valid] = np.inf
    row, col = np.unravel_index(int(np.argmin(var)), var.shape)
    top, left = row - size // 2, col - size // 2  # scipy centres even windows at size // 2
    return slice(int(top), int(top) + size), slice(int(left), int(left) + size)


def roi_record(roi: tuple[slice, slice]) -> list[int]:
    return [roi[0].start, roi[0].stop, roi[1].start, roi[1].stop]


def calibrate_to_slice(hu: np.ndarray, *, config: CTDegradation,
                       full_dose_noise_hu: float | None = None) -> tuple[CTDegradation, dict[str, Any]]:
    """``config`` with ``incident_photons`` calibrated so that the simulated full-dose noise
    matches the noise of ``hu``'s most uniform soft-tissue region
    (:func:`ratmir.tasks.calibrate_incident_photons`), or, with ``full_dose_noise_hu``, equals
    that standard deviation instead: an acquisition noisier than the slice (e.g. the thin, sharp
    slices of the AAPM-Mayo challenge, where clinical thick slices are smooth). Without a
    uniform region ``config`` is returned unchanged and the record says so."""
    roi = most_uniform_roi(hu)
    if roi is None:
        return config, {"status": "not calibrated: no uniform soft-tissue region",
                        "incident_photons": config.incident_photons}
    measured = float(np.std(hu[roi]))
    photons = calibrate_incident_photons(hu, roi=roi, config=config)
    record = {"status": "calibrated", "roi_rows_cols": roi_record(roi), "roi_hu_range": list(SOFT_TISSUE_HU),
              "full_dose_roi_std_hu": measured}
    if full_dose_noise_hu is not None:
        if not full_dose_noise_hu > 0:
            raise ValueError(f"full_dose_noise_hu must be > 0, got {full_dose_noise_hu}")
        photons *= (measured / full_dose_noise_hu) ** 2  # noise std scales as 1/sqrt(I0)
        record.update(status="calibrated to an emulated full-dose noise", emulated_full_dose_std_hu=full_dose_noise_hu)
    return dataclasses.replace(config, incident_photons=float(photons)), {**record, "incident_photons": float(photons)}
