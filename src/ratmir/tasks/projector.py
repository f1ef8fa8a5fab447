"""A thin wrapper around astra-toolbox's 2D parallel-beam CPU projectors.

Geometry is in **pixel units**: pixels are 1 x 1 and detector bins are ``detector_spacing``
pixels wide, so a forward projection of an image of per-pixel attenuation (or activity) gives
dimensionless line integrals (or activity x pixel lengths). Callers convert physical units with
the pixel size themselves; this avoids relying on astra's CPU scaling for non-unit voxels.

The wrapper holds only the geometry (plain numbers); every call creates the astra projector and
data objects it needs and deletes them before returning, so nothing leaks and the object can be
pickled to worker processes. Creating a projector costs about 2 ms, small beside a projection.
Parallel beam is used because astra's fan-beam FBP needs CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import astra
import numpy as np

from .base import check_array

PROJECTOR_TYPES = ("linear", "line", "strip")
FBP_FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")


def default_detector_count(shape: tuple[int, int]) -> int:
    """Enough unit-width bins to cover the image diagonal at every angle, plus a margin of 2."""
    return int(math.ceil(math.hypot(shape[0], shape[1]))) + 2


@dataclass(frozen=True)
class ParallelBeamProjector:
    """Parallel-beam geometry over ``shape`` pixels with ``n_views`` angles in [0, pi).

    ``view_indices`` (None = all views) selects a subset of those angles, as OSEM needs.
    """

    shape: tuple[int, int]
    n_views: int
    n_detectors: int
    detector_spacing: float = 1.0
    projector_type: str = "linear"
    view_indices: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise ValueError(f"shape must be (rows, cols) >= 1, got {self.shape}")
        if self.n_views < 1 or self.n_detectors < 1:
            raise ValueError(
                f"n_views and n_detectors must be >= 1, got {self.n_views}, {self.n_detectors}"
            )
        if self.projector_type not in PROJECTOR_TYPES:
            raise ValueError(
                f"projector_type must be one of {PROJECTOR_TYPES}, got {self.projector_type!r}"
            )

    @property
    def angles(self) -> np.ndarray:
        all_angles = np.linspace(0.0, np.pi, self.n_views, endpoint=False)
        if self.view_indices is None:
            return all_angles
        return all_angles[list(self.view_indices)]

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        return (len(self.angles), self.n_detectors)

    def subset(self, view_indices: tuple[int, ...]) -> ParallelBeamProjector:
        """The same geometry restricted to ``view_indices`` of the full view set."""
        return ParallelBeamProjector(
            shape=self.shape,
            n_views=self.n_views,
            n_detectors=self.n_detectors,
            detector_spacing=self.detector_spacing,
            projector_type=self.projector_type,
            view_indices=tuple(int(i) for i in view_indices),
        )

    def _geometries(self) -> tuple[dict, dict]:
        vol = astra.create_vol_geom(self.shape[0], self.shape[1])
        proj = astra.create_proj_geom(
            "parallel", float(self.detector_spacing), int(self.n_detectors), self.angles
        )
        return vol, proj

    def forward(self, image: np.ndarray) -> np.ndarray:
        """Line integrals of ``image`` [H, W] (pixel units): sinogram [views, detectors]."""
        image = check_array(image, name="image", ndim=2)
        if image.shape != self.shape:
            raise ValueError(f"image must have shape {self.shape}, got {image.shape}")
        vol, proj = self._geometries()
        projector_id = astra.create_projector(self.projector_type, proj, vol)
        try:
            sino_id, sino = astra.create_sino(np.ascontiguousarray(image), projector_id)
            astra.data2d.delete(sino_id)
        finally:
            astra.projector.delete(projector_id)
        return sino.astype(np.float32, copy=False)

    def back(self, sinogram: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`forward`: backprojection of a sinogram onto [H, W]."""
        sinogram = self._check_sinogram(sinogram)
        vol, proj = self._geometries()
        projector_id = astra.create_projector(self.projector_type, proj, vol)
        try:
            bp_id, image = astra.create_backprojection(sinogram, projector_id)
            astra.data2d.delete(bp_id)
        finally:
            astra.projector.delete(projector_id)
        return image.astype(np.float32, copy=False)

    def fbp(self, sinogram: np.ndarray, *, filter_type: str = "ram-lak") -> np.ndarray:
        """Filtered backprojection (astra CPU ``FBP``) of line integrals back to [H, W]."""
        if filter_type not in FBP_FILTERS:
            raise ValueError(f"filter_type must be one of {FBP_FILTERS}, got {filter_type!r}")
        sinogram = self._check_sinogram(sinogram)
        vol, proj = self._geometries()
        projector_id = astra.create_projector(self.projector_type, proj, vol)
        sino_id = astra.data2d.create("-sino", proj, sinogram)
        rec_id = astra.data2d.create("-vol", vol, 0.0)
        algorithm_id = None
        try:
            cfg = astra.astra_dict("FBP")
            cfg["ProjectorId"] = projector_id
            cfg["ProjectionDataId"] = sino_id
            cfg["ReconstructionDataId"] = rec_id
            cfg["FilterType"] = filter_type
            algorithm_id = astra.algorithm.create(cfg)
            astra.algorithm.run(algorithm_id)
            image = astra.data2d.get(rec_id)
        finally:
            if algorithm_id is not None:
                astra.algorithm.delete(algorithm_id)
            astra.data2d.delete([sino_id, rec_id])
            astra.projector.delete(projector_id)
        return image.astype(np.float32, copy=False)

    def _check_sinogram(self, sinogram: np.ndarray) -> np.ndarray:
        sinogram = check_array(sinogram, name="sinogram", ndim=2)
        if sinogram.shape != self.sinogram_shape:
            raise ValueError(
                f"sinogram must have shape {self.sinogram_shape} [views, detectors], "
                f"got {sinogram.shape}"
            )
        return np.ascontiguousarray(sinogram)

    def record(self) -> dict[str, object]:
        return {
            "geometry": "parallel",
            "shape": list(self.shape),
            "n_views": self.n_views,
            "n_detectors": self.n_detectors,
            "detector_spacing_pixels": self.detector_spacing,
            "projector_type": self.projector_type,
            "angles": "linspace(0, pi, n_views, endpoint=False)",
        }
