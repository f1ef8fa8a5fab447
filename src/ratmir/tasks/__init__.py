"""The paper's three tasks as documented, seeded degradations with recorded parameters.

- ``ct``: quarter-dose CT from a full-dose slice in HU (:func:`simulate_low_dose_ct`).
- ``pet``: full- and 1/12-dose OSEM images of MNI152-based FDG phantoms (:func:`simulate_pet`).
- ``pathology``: 4x bicubic down/up of RGB tiles (:func:`simulate_low_resolution`).

:func:`get_task` gives each task's units, channel count, normalisation and degradation.
Every degradation returns a :class:`DegradedPair` with a JSON-serialisable ``record``.
"""

from .base import DegradedPair, Normalisation
from .ct import (
    CT_NORMALISATION,
    CTDegradation,
    calibrate_incident_photons,
    hu_to_mu,
    mu_to_hu,
    simulate_low_dose_ct,
)
from .pathology import (
    PATHOLOGY_NORMALISATION,
    PathologyDegradation,
    bicubic_downscale,
    crop_to_multiple,
    simulate_low_resolution,
)
from .pet import PET_NORMALISATION, PETAcquisition, non_air_slices, osem, simulate_pet
from .pet_phantom import (
    MNI152Tissues,
    PETPhantom,
    PETPhantomConfig,
    load_mni152_tissues,
    make_pet_phantom,
    mni152_template_paths,
)
from .projector import ParallelBeamProjector
from .registry import TASK_NAMES, TASKS, TaskSpec, get_task

__all__ = [
    "CT_NORMALISATION",
    "CTDegradation",
    "DegradedPair",
    "MNI152Tissues",
    "Normalisation",
    "PATHOLOGY_NORMALISATION",
    "PETAcquisition",
    "PETPhantom",
    "PETPhantomConfig",
    "PET_NORMALISATION",
    "ParallelBeamProjector",
    "PathologyDegradation",
    "TASKS",
    "TASK_NAMES",
    "TaskSpec",
    "bicubic_downscale",
    "calibrate_incident_photons",
    "crop_to_multiple",
    "get_task",
    "hu_to_mu",
    "load_mni152_tissues",
    "make_pet_phantom",
    "mni152_template_paths",
    "mu_to_hu",
    "non_air_slices",
    "osem",
    "simulate_low_dose_ct",
    "simulate_low_resolution",
    "simulate_pet",
]
