"""PET synthesis task: full-dose and 1/12-dose OSEM reconstructions of a phantom slice.

Acquisition model (2D, parallel beam, astra-toolbox on the CPU), in pixel units:

- scanner blur: isotropic Gaussian of ``fwhm_mm`` (4.5 mm, about the transaxial resolution of a
  clinical PET/CT near the centre) applied to the activity (scipy ``gaussian_filter``);
- attenuation factors ``a = exp(-P mu)`` along each line of response;
- expected full-dose counts ``ybar = sensitivity * a * P(blur(x))`` with ``x`` in kBq/mL and
  ``P`` the projector (line integrals in pixel lengths); ``sensitivity`` sets the count level
  (default: about 2e6 counts for a mid-brain slice, the order of a 10-min FDG brain scan per
  2 mm plane); randoms and scatter are not modelled;
- full dose ``y ~ Poisson(ybar)``; low dose by list-mode decimation as in the paper: each event
  is kept with probability ``1 / dose_reduction`` (12), i.e. ``y_low ~ Binomial(y, 1/12)``,
  which is exactly ``Poisson(ybar / 12)`` and shares events with the full-dose scan.

Both are reconstructed by :func:`osem` (ordered-subsets EM with attenuation in the system
model, no PSF modelling, no post-filter), the low-dose one with ``sensitivity / 12`` so both are
in kBq/mL. Defaults: 180 views, 4 iterations x 12 subsets (15 views per subset; subset ``k``
takes views ``k, k + 12, ...``), as clinical OSEM uses a few iterations of many subsets.

Normalisation (:data:`PET_NORMALISATION`): activity / 30 kBq/mL, clipped to [0, 1]. A *fixed*
reference is used rather than a per-volume one (e.g. the full-dose maximum) because it is the
same for LQ and HQ, needs no statistics of the unknown HQ image at inference, and is exactly
invertible; 30 kBq/mL is 3x the phantoms' GM uptake (lesions are 2x), leaving headroom for the
low-dose noise. Users' volumes in other units (Bq/mL, SUV) need their own reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .._checks import check_number, check_positive_int
from .base import DegradedPair, Normalisation, check_array, check_seed, config_record, library_versions
from .pet_phantom import PETPhantom
from .projector import ParallelBeamProjector, default_detector_count

PET_NORMALISATION = Normalisation(low=0.0, high=30.0, units="kBq/mL")
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
_EPS = 1e-12


@dataclass(frozen=True)
class PETAcquisition:
    """Acquisition and reconstruction parameters; ``record()`` serialises them."""

    dose_reduction: float = 12.0
    sensitivity: float = 2.0
    fwhm_mm: float = 4.5
    n_views: int = 180
    n_detectors: int | None = None
    n_iterations: int = 4
    n_subsets: int = 12
    seed: int = 0

    def __post_init__(self) -> None:
        check_number("dose_reduction", self.dose_reduction, low=1.0)
        check_number("sensitivity", self.sensitivity, low=0.0, low_inclusive=False)
        check_number("fwhm_mm", self.fwhm_mm, low=0.0)
        for name in ("n_views", "n_iterations", "n_subsets"):
            check_positive_int(name, getattr(self, name))
        if self.n_detectors is not None:
            check_positive_int("n_detectors", self.n_detectors)
        if self.n_subsets > self.n_views:
            raise ValueError(f"n_subsets must be <= n_views ({self.n_views}), got {self.n_subsets}")
        check_seed(self.seed)

    def projector(self, shape: tuple[int, int]) -> ParallelBeamProjector:
        n_detectors = self.n_detectors or default_detector_count(shape)
        return ParallelBeamProjector(shape=shape, n_views=self.n_views, n_detectors=n_detectors)

    def record(self) -> dict[str, object]:
        return {"task": "pet", **config_record(self)}


def osem(
    counts: np.ndarray,
    *,
    projector: ParallelBeamProjector,
    attenuation_factors: np.ndarray,
    sensitivity: float,
    n_iterations: int,
    n_subsets: int,
) -> np.ndarray:
    """OSEM for ``counts ~ Poisson(sensitivity * attenuation_factors * P x)``; returns ``x``.

    Subset ``k`` holds views ``k, k + n_subsets, ...``. Starts from the uniform image that
    matches the total counts. ``n_subsets=1`` is MLEM.
    """
    counts = check_array(counts, name="counts", ndim=2).astype(np.float64)
    if counts.min() < 0:
        raise ValueError(f"counts must be >= 0, got minimum {counts.min()}")
    weights = sensitivity * np.asarray(attenuation_factors, dtype=np.float64)
    if weights.shape != counts.shape:
        raise ValueError(f"attenuation_factors must have shape {counts.shape}, got {weights.shape}")
    subsets = [tuple(range(k, projector.n_views, n_subsets)) for k in range(n_subsets)]
    parts = [projector.subset(views) for views in subsets]
    norms = [part.back((weights[list(views)]).astype(np.float32)) for part, views in zip(parts, subsets)]
    total_norm = sum(norms)
    x = np.full(projector.shape, counts.sum() / max(float(total_norm.sum()), _EPS), dtype=np.float64)
    for _ in range(n_iterations):
        for part, views, norm in zip(parts, subsets, norms):
            w, y = weights[list(views)], counts[list(views)]
            expected = w * part.forward(x.astype(np.float32))
            ratio = np.where(expected > _EPS, y / np.maximum(expected, _EPS), 0.0)
            update = part.back((w * ratio).astype(np.float32))
            x = np.where(norm > _EPS, x * update / np.maximum(norm, _EPS), 0.0)
    return x.astype(np.float32)


def simulate_pet(phantom: PETPhantom, *, config: PETAcquisition) -> DegradedPair:
    """Full-dose (``hq``) and reduced-dose (``lq``) OSEM images of ``phantom``, in kBq/mL.

    The record holds the parameters, the phantom's record and the realised count levels.
    """
    if not isinstance(phantom, PETPhantom):
        raise TypeError(f"phantom must be a PETPhantom, got {type(phantom).__name__}")
    if not isinstance(config, PETAcquisition):
        raise TypeError(f"config must be a PETAcquisition, got {type(config).__name__}")
    activity = check_array(phantom.activity, name="phantom.activity", ndim=2, min_size=4)
    mu = check_array(phantom.attenuation, name="phantom.attenuation", ndim=2, min_size=4)
    if mu.shape != activity.shape or activity.min() < 0 or mu.min() < 0:
        raise ValueError(
            f"phantom activity and attenuation must be >= 0 and of one shape, got "
            f"{activity.shape} (min {activity.min()}) and {mu.shape} (min {mu.min()})"
        )
    projector = config.projector(activity.shape)
    pixel = phantom.pixel_size_mm
    blurred = gaussian_filter(activity, sigma=config.fwhm_mm * _FWHM_TO_SIGMA / pixel, mode="constant")
    attenuation_factors = np.exp(-projector.forward(mu * pixel).astype(np.float64))
    expected = config.sensitivity * attenuation_factors * np.maximum(projector.forward(blurred), 0.0)

    rng = np.random.default_rng(config.seed)
    full_counts = rng.poisson(expected)
    low_counts = rng.binomial(full_counts, 1.0 / config.dose_reduction)
    recon = dict(projector=projector, attenuation_factors=attenuation_factors,
                 n_iterations=config.n_iterations, n_subsets=config.n_subsets)
    hq = osem(full_counts.astype(np.float32), sensitivity=config.sensitivity, **recon)
    lq = osem(low_counts.astype(np.float32), sensitivity=config.sensitivity / config.dose_reduction, **recon)
    full_total, low_total = int(full_counts.sum()), int(low_counts.sum())
    record = {
        **config.record(),
        "phantom": phantom.record,
        "pixel_size_mm": pixel,
        "projector": projector.record(),
        "full_dose_counts": full_total,
        "low_dose_counts": low_total,
        "count_ratio": full_total / max(low_total, 1),
        "units": "kBq/mL",
        "versions": library_versions("astra-toolbox", "scipy", "scikit-image", "nibabel", "nilearn"),
    }
    return DegradedPair(hq=hq, lq=lq, record=record)


def non_air_slices(volume: np.ndarray, *, threshold: float, min_fraction: float = 0.01) -> list[int]:
    """Indices of slices of ``volume`` [Z, H, W] with more than ``min_fraction`` of their
    pixels above ``threshold``: the slices to keep once air-only ones are dropped."""
    volume = check_array(volume, name="volume", ndim=3)
    if not 0.0 <= min_fraction < 1.0:
        raise ValueError(f"min_fraction must be in [0, 1), got {min_fraction}")
    fractions = (volume > threshold).mean(axis=(1, 2))
    return [int(i) for i in np.flatnonzero(fractions > min_fraction)]
