"""CT denoising task: quarter-dose simulation from a full-dose slice in HU.

Model (per slice, parallel beam, astra-toolbox on the CPU):

1. HU -> linear attenuation: ``mu = mu_water * (1 + HU / 1000)``, clipped at 0, with
   ``mu_water`` at an effective energy of 70 keV (0.0193 / mm, water, NIST XCOM), the usual
   effective energy of a 120 kVp spectrum. Converted to per-pixel units with the pixel size.
2. Forward projection to line integrals ``p`` (``n_views`` angles over 180 degrees,
   ``n_detectors`` bins one pixel wide).
3. Noise in the transmission domain. A full-dose scan with ``I0`` incident photons per bin and
   view measured ``N ~ Poisson(I0 exp(-p))``, so ``var(p) ~= exp(p) / I0``. A scan at dose
   fraction ``f`` measures ``Poisson(f I0 exp(-p))`` with ``var(p) ~= exp(p) / (f I0)``: ``1/f``
   times the full-dose variance (4x for a quarter dose, i.e. 2x the noise std). The input slice
   already carries the full-dose noise, so only the *extra* variance ``(1/f - 1) exp(p) / I0``
   is added. With ``m = I0 exp(-p)`` the scaled counts ``f m`` are perturbed by a centred Poisson
   variable: ``N_f = f m + (Poisson(lam) - lam)``, ``lam = f m (1 - f)``, giving mean ``f m`` and
   variance ``f^2 m + f m (1 - f) = f m`` in total, as a real scan at dose ``f`` has.
   For a noiseless input (``input_noiseless=True``, e.g. a phantom) ``lam = f m`` and
   ``N_f ~ Poisson(f m)`` exactly. Counts are floored at ``min_counts`` before the log.
4. ``p_f = -log(N_f / (f I0))``; the noise sinogram ``p_f - p`` is reconstructed by FBP and
   added to the input slice. FBP is linear, so this equals ``FBP(p_f) - FBP(p) + input``: the
   low-dose image differs from the full-dose one only by the simulated noise, not by the
   projector's discretisation error of a round trip (~18 HU on a real abdominal slice).

Not modelled: the beam spectrum (monoenergetic), electronic noise, bowtie filter, fan beam.
The full-dose photon count ``incident_photons`` is per detector bin per view of this geometry;
calibrate it so that the simulated full-dose noise matches the scanner's (see docs/tasks.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._checks import check_number, check_positive_int
from .base import DegradedPair, Normalisation, check_array, check_seed, config_record, library_versions
from .projector import FBP_FILTERS, ParallelBeamProjector, default_detector_count

#: HU window of the CT literature (AAPM-Mayo low-dose CT challenge papers) mapped onto [0, 1].
CT_NORMALISATION = Normalisation(low=-1024.0, high=3072.0, units="HU")
#: Linear attenuation of water at a 70 keV effective energy, per mm.
MU_WATER_70KEV_PER_MM = 0.0193


@dataclass(frozen=True)
class CTDegradation:
    """Parameters of the low-dose CT simulation; ``record()`` serialises them."""

    dose_fraction: float = 0.25
    incident_photons: float = 1.0e5
    n_views: int = 720
    n_detectors: int | None = None
    pixel_size_mm: float = 0.7
    mu_water_per_mm: float = MU_WATER_70KEV_PER_MM
    fbp_filter: str = "shepp-logan"
    input_noiseless: bool = False
    min_counts: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_number("dose_fraction", self.dose_fraction, low=0.0, high=1.0, low_inclusive=False)
        for name in ("incident_photons", "pixel_size_mm", "mu_water_per_mm", "min_counts"):
            check_number(name, getattr(self, name), low=0.0, low_inclusive=False)
        check_positive_int("n_views", self.n_views)
        if self.n_detectors is not None:
            check_positive_int("n_detectors", self.n_detectors)
        if self.fbp_filter not in FBP_FILTERS:
            raise ValueError(f"fbp_filter must be one of {FBP_FILTERS}, got {self.fbp_filter!r}")
        if not isinstance(self.input_noiseless, bool):
            raise TypeError(f"input_noiseless must be a bool, got {type(self.input_noiseless).__name__}")
        check_seed(self.seed)

    def projector(self, shape: tuple[int, int]) -> ParallelBeamProjector:
        n_detectors = self.n_detectors or default_detector_count(shape)
        return ParallelBeamProjector(shape=shape, n_views=self.n_views, n_detectors=n_detectors)

    def record(self) -> dict[str, object]:
        return {"task": "ct", **config_record(self)}


def hu_to_mu(hu: np.ndarray, *, mu_water_per_mm: float = MU_WATER_70KEV_PER_MM) -> np.ndarray:
    """Linear attenuation per mm from HU; negative values (below air) are clipped to 0."""
    return np.clip(mu_water_per_mm * (1.0 + hu / 1000.0), 0.0, None).astype(np.float32)


def mu_to_hu(mu: np.ndarray, *, mu_water_per_mm: float = MU_WATER_70KEV_PER_MM) -> np.ndarray:
    """HU from linear attenuation per mm (the inverse of :func:`hu_to_mu` above air)."""
    return (1000.0 * (mu / mu_water_per_mm - 1.0)).astype(np.float32)


def noisy_line_integrals(
    line_integrals: np.ndarray, *, config: CTDegradation, rng: np.random.Generator
) -> np.ndarray:
    """Line integrals at dose ``config.dose_fraction`` from full-dose (or noiseless) ones."""
    fraction = config.dose_fraction
    full_counts = config.incident_photons * np.exp(-line_integrals.astype(np.float64))
    lam = fraction * full_counts * (1.0 if config.input_noiseless else 1.0 - fraction)
    counts = fraction * full_counts + (rng.poisson(lam) - lam)
    counts = np.maximum(counts, config.min_counts)
    return (-np.log(counts / (fraction * config.incident_photons))).astype(np.float32)


def simulate_low_dose_ct(hu: np.ndarray, *, config: CTDegradation) -> DegradedPair:
    """Simulate the slice ``hu`` [H, W] (HU, float) at ``config.dose_fraction`` of its dose.

    Values below air (scanner padding such as -3024) count as air (``mu = 0``).
    Returns ``DegradedPair(hq=hu as float32, lq=low-dose slice in HU, record=...)``.
    Deterministic for a given ``config.seed``.
    """
    if not isinstance(config, CTDegradation):
        raise TypeError(f"config must be a CTDegradation, got {type(config).__name__}")
    hu = check_array(hu, name="hu", ndim=2, min_size=2)
    if hu.min() < -4096 or hu.max() > 16384:
        raise ValueError(
            f"hu must be in Hounsfield units (-4096..16384, padding such as -3024 allowed), got range "
            f"[{hu.min():.1f}, {hu.max():.1f}]; rescale the slope/intercept first"
        )
    projector = config.projector(hu.shape)
    mu_per_pixel = hu_to_mu(hu, mu_water_per_mm=config.mu_water_per_mm) * config.pixel_size_mm
    line_integrals = projector.forward(mu_per_pixel)
    rng = np.random.default_rng(config.seed)
    noisy = noisy_line_integrals(line_integrals, config=config, rng=rng)
    noise_mu_per_pixel = projector.fbp(noisy - line_integrals, filter_type=config.fbp_filter)
    noise_hu = 1000.0 * noise_mu_per_pixel / (config.pixel_size_mm * config.mu_water_per_mm)
    record = {
        **config.record(),
        "projector": projector.record(),
        "noise_model": "centred-Poisson extra variance in the transmission domain",
        "min_full_dose_counts": float(config.incident_photons * np.exp(-line_integrals.max())),
        "versions": library_versions("astra-toolbox"),
    }
    return DegradedPair(hq=hu, lq=(hu + noise_hu).astype(np.float32), record=record)


def calibrate_incident_photons(
    hu: np.ndarray, *, roi: tuple[slice, slice], config: CTDegradation
) -> float:
    """The full-dose ``incident_photons`` whose simulated noise matches the slice's own.

    ``roi`` must be a uniform region of ``hu``: its standard deviation is taken as the
    full-dose noise (anatomy in it would inflate the estimate). Full-dose noise is simulated on
    the slice at ``config.incident_photons`` and, since the noise std scales as ``1/sqrt(I0)``,
    ``I0 = config.incident_photons * (simulated std / measured std)^2``.
    """
    hu = check_array(hu, name="hu", ndim=2, min_size=2)
    region = hu[roi]
    if region.size < 16:
        raise ValueError(f"roi must cover at least 16 pixels, got {region.size}")
    measured = float(region.std())
    if measured <= 0:
        raise ValueError(f"roi must contain noise (std > 0), got std {measured}")
    trial = dataclasses.replace(config, dose_fraction=1.0, input_noiseless=True)
    simulated = float((simulate_low_dose_ct(hu, config=trial).lq - hu)[roi].std())
    return config.incident_photons * (simulated / measured) ** 2
