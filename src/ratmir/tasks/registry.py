"""The three tasks by name: units, channel count, normalisation and degradation of each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._checks import check_choice
from .base import DegradedPair, Normalisation
from .ct import CT_NORMALISATION, CTDegradation, simulate_low_dose_ct
from .pathology import PATHOLOGY_NORMALISATION, PathologyDegradation, simulate_low_resolution
from .pet import PET_NORMALISATION, PETAcquisition, simulate_pet


@dataclass(frozen=True)
class TaskSpec:
    """What the rest of ratmir needs to know about a task.

    ``degrade(source, config=...)`` takes the task's source (an HU slice, a :class:`PETPhantom`,
    an RGB image) and returns a :class:`DegradedPair`; ``config`` defaults to
    ``config_type()``, the paper's setting. ``dicom_modalities`` are the DICOM Modality values
    a model of the task may restore (``ratmir restore`` refuses others unless forced); empty
    means any.
    """

    name: str
    units: str
    channels: int
    normalisation: Normalisation
    config_type: type
    simulate: Callable[..., DegradedPair]
    description: str
    dicom_modalities: tuple[str, ...] = ()

    def normalise(self, x: Any) -> Any:
        return self.normalisation.normalise(x)

    def denormalise(self, y: Any) -> Any:
        return self.normalisation.denormalise(y)

    def degrade(self, source: Any, *, config: Any = None) -> DegradedPair:
        if config is None:
            config = self.config_type()
        if not isinstance(config, self.config_type):
            raise TypeError(
                f"config for task {self.name!r} must be a {self.config_type.__name__}, "
                f"got {type(config).__name__}"
            )
        return self.simulate(source, config=config)

    def record(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "units": self.units,
            "channels": self.channels,
            "normalisation": self.normalisation.record(),
            "description": self.description,
        }


TASKS: dict[str, TaskSpec] = {
    "ct": TaskSpec(
        name="ct", units="HU", channels=1, normalisation=CT_NORMALISATION,
        config_type=CTDegradation, simulate=simulate_low_dose_ct,
        description="quarter-dose CT: extra Poisson noise in the sinogram, FBP (astra, parallel beam)",
        dicom_modalities=("CT",),
    ),
    "pet": TaskSpec(
        name="pet", units="kBq/mL", channels=1, normalisation=PET_NORMALISATION,
        config_type=PETAcquisition, simulate=simulate_pet,
        description="1/12-dose PET: Poisson counts, list-mode decimation, OSEM (astra, parallel beam)",
        dicom_modalities=("PT",),
    ),
    "pathology": TaskSpec(
        name="pathology", units="RGB 8-bit levels", channels=3, normalisation=PATHOLOGY_NORMALISATION,
        config_type=PathologyDegradation, simulate=simulate_low_resolution,
        description="4x SR: Pillow antialiased bicubic down then up, RGB",
        dicom_modalities=("SM", "GM", "XC"),  # slide, general and external-camera microscopy
    ),
}
TASK_NAMES = tuple(TASKS)


def get_task(name: str) -> TaskSpec:
    """The :class:`TaskSpec` of ``name`` (one of ``TASK_NAMES``)."""
    return TASKS[check_choice("task", name, TASK_NAMES)]
