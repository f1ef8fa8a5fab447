"""FDG-like brain PET phantoms on real anatomy: the MNI152 (ICBM 2009a, symmetric) templates.

The ``nilearn`` wheel bundles, under ``nilearn/datasets/data/``, the 1 mm MNI152 2009a maps
``mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz`` (grey-matter probability),
``mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz`` (white matter) and
``mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz`` (brain-extracted T1), each 197 x 233 x 189,
uint8 0..255. They are read with nibabel from the installed package (nilearn itself is not
imported: it pulls in scikit-learn and pandas). Nothing is downloaded.

Per axial slice, at 1 mm:

- brain = T1 > 0; CSF probability = clip(brain - GM - WM, 0, 1);
- activity (kBq/mL) = ``gm_activity`` GM + ``wm_activity`` WM + ``csf_activity`` CSF (FDG-like
  GM:WM = 4:1, CSF low), plus ``extracranial_activity`` in a 12 mm head shell around the brain
  (scalp, muscle);
- attenuation (per mm, 511 keV): soft tissue/water 0.0096 in brain and shell, skull 0.0150 in
  the 2..8 mm layer of the shell (the template has no skull; this layer stands in for it);
- ``n_lesions`` hot discs (radius drawn uniformly in ``lesion_radius_mm``, activity
  ``lesion_ratio`` x GM) at seeded random places inside the GM/WM tissue.

Then the slice is centred in a square field of view and block-averaged by ``pixel_size_mm``
(skimage ``downscale_local_mean``): the default is 2 mm pixels on a 128 x 128 grid.
Image orientation: rows run anterior -> posterior, columns follow the template's x axis.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.transform import downscale_local_mean

from .._checks import check_number, check_positive_int
from .base import check_seed, config_record

MNI152_FILES = {
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
}
MU_SOFT_TISSUE_511KEV_PER_MM = 0.0096
MU_SKULL_511KEV_PER_MM = 0.0150
_SHELL_MM = 12.0
_SKULL_MM = (2.0, 8.0)


def mni152_template_paths() -> dict[str, Path]:
    """Paths of the MNI152 GM/WM/T1 maps inside the installed nilearn package."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the PET phantoms need the MNI152 templates of nilearn: pip install nilearn")
    data_dir = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    paths = {key: data_dir / name for key, name in MNI152_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"expected MNI152 templates in the nilearn wheel, missing: {missing}")
    return paths


@dataclass(frozen=True)
class MNI152Tissues:
    """Tissue probability maps [X, Y, Z] in [0, 1] at 1 mm, and the brain mask."""

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray

    @property
    def n_slices(self) -> int:
        return int(self.gm.shape[2])

    def axial(self, name: str, index: int) -> np.ndarray:
        """Axial slice ``index`` of map ``name`` as [rows = anterior->posterior, cols = x]."""
        volume = getattr(self, name)
        if not 0 <= index < volume.shape[2]:
            raise ValueError(f"slice index must be in [0, {volume.shape[2] - 1}], got {index}")
        return np.ascontiguousarray(volume[:, :, index].T[::-1])


def load_mni152_tissues() -> MNI152Tissues:
    import nibabel

    paths = mni152_template_paths()
    maps = {k: np.asarray(nibabel.load(p).dataobj, dtype=np.float32) / 255.0 for k, p in paths.items()}
    brain = (maps["t1"] > 0).astype(np.float32)
    csf = np.clip(brain - maps["gm"] - maps["wm"], 0.0, 1.0)
    return MNI152Tissues(gm=maps["gm"], wm=maps["wm"], csf=csf, brain=brain)


@dataclass(frozen=True)
class PETPhantomConfig:
    """Activities in kBq/mL, sizes in mm; ``record()`` serialises them."""

    gm_activity: float = 10.0
    wm_activity: float = 2.5
    csf_activity: float = 0.5
    extracranial_activity: float = 1.0
    n_lesions: int = 3
    lesion_radius_mm: tuple[float, float] = (2.0, 5.0)
    lesion_ratio: float = 2.0
    pixel_size_mm: int = 2
    grid_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("gm_activity", "wm_activity", "csf_activity", "extracranial_activity"):
            check_number(name, getattr(self, name), low=0.0)
        for name, low in (("n_lesions", 0), ("pixel_size_mm", 1), ("grid_size", 8)):
            check_positive_int(name, getattr(self, name), minimum=low)
        r_low, r_high = self.lesion_radius_mm
        if not 0 < r_low <= r_high:
            raise ValueError(f"lesion_radius_mm must be (low, high) with 0 < low <= high, got {self.lesion_radius_mm}")
        check_number("lesion_ratio", self.lesion_ratio, low=0.0, low_inclusive=False)
        check_seed(self.seed)

    def record(self) -> dict[str, object]:
        return {"phantom": "mni152_2009a_fdg", **config_record(self), "lesion_radius_mm": list(self.lesion_radius_mm)}


@dataclass(frozen=True)
class PETPhantom:
    """One phantom slice on the PET grid: activity (kBq/mL), attenuation (/mm), lesion mask."""

    activity: np.ndarray
    attenuation: np.ndarray
    lesions: np.ndarray
    pixel_size_mm: float
    record: dict


def _place_lesions(tissue: np.ndarray, rng: np.random.Generator, config: PETPhantomConfig) -> tuple[np.ndarray, list[dict]]:
    """Boolean mask of ``n_lesions`` discs whose centres lie inside GM/WM, and their records."""
    mask = np.zeros(tissue.shape, dtype=bool)
    inside = ndimage.distance_transform_edt(tissue > 0.5)
    rows, cols = np.indices(tissue.shape)
    placed: list[dict] = []
    for _ in range(config.n_lesions):
        radius = float(rng.uniform(*config.lesion_radius_mm))
        candidates = np.flatnonzero(inside > radius)
        if candidates.size == 0:
            break
        r, c = np.unravel_index(int(rng.choice(candidates)), tissue.shape)
        mask |= (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
        placed.append({"row_1mm": int(r), "col_1mm": int(c), "radius_mm": round(radius, 3)})
    return mask, placed


def _to_grid(image: np.ndarray, config: PETPhantomConfig) -> np.ndarray:
    """Centre ``image`` (1 mm) in a square FOV, then block-average to ``pixel_size_mm``."""
    side = config.grid_size * config.pixel_size_mm
    if max(image.shape) > side:
        raise ValueError(f"grid_size * pixel_size_mm must be >= {max(image.shape)} mm, got {side}")
    padded = np.zeros((side, side), dtype=np.float32)
    top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    padded[top : top + image.shape[0], left : left + image.shape[1]] = image
    return downscale_local_mean(padded, (config.pixel_size_mm, config.pixel_size_mm)).astype(np.float32)


def make_pet_phantom(tissues: MNI152Tissues, *, slice_index: int, config: PETPhantomConfig) -> PETPhantom:
    """The activity and attenuation phantom of axial slice ``slice_index`` (see module doc)."""
    if not isinstance(config, PETPhantomConfig):
        raise TypeError(f"config must be a PETPhantomConfig, got {type(config).__name__}")
    gm, wm = tissues.axial("gm", slice_index), tissues.axial("wm", slice_index)
    csf, brain = tissues.axial("csf", slice_index), tissues.axial("brain", slice_index) > 0
    outside = ndimage.distance_transform_edt(~brain) if brain.any() else np.full(brain.shape, np.inf)
    shell = (outside > 0) & (outside <= _SHELL_MM)
    skull = (outside > _SKULL_MM[0]) & (outside <= _SKULL_MM[1])

    activity = config.gm_activity * gm + config.wm_activity * wm + config.csf_activity * csf
    activity = activity + config.extracranial_activity * shell
    rng = np.random.default_rng([config.seed, slice_index])
    lesions, placed = _place_lesions(gm + wm, rng, config)
    activity[lesions] = config.lesion_ratio * config.gm_activity
    attenuation = np.where(brain | shell, MU_SOFT_TISSUE_511KEV_PER_MM, 0.0)
    attenuation[skull] = MU_SKULL_511KEV_PER_MM

    record = {**config.record(), "slice_index": slice_index, "lesions": placed,
              "template_files": sorted(MNI152_FILES.values())}
    return PETPhantom(
        activity=_to_grid(activity.astype(np.float32), config),
        attenuation=_to_grid(attenuation.astype(np.float32), config),
        lesions=_to_grid(lesions.astype(np.float32), config) > 0.5,
        pixel_size_mm=float(config.pixel_size_mm),
        record=record,
    )
