"""The user's data for ``ratmir prepare TASK --source PATH ...``.

Each PATH is a file or folder; what it holds decides how it is used:

- **paired NIfTI volumes** (ct, pet): a folder with a full-dose sub-folder (named ``full``,
  ``hq`` or ``high``) and a low-dose one (``low``, ``lq`` or ``quarter``) holding volumes of
  the same file names; each volume is one subject, cut into axial 2-D slices (the first array
  axis, [D, H, W]).
- **AAPM-Mayo low-dose CT challenge layout** (ct): per patient, a full-dose and a quarter-dose
  DICOM series in folders whose names differ only by the dose word (``full_1mm`` /
  ``quarter_1mm``, ``Full Dose Images`` / ``Low Dose Images``); slices are paired by slice
  position (within 0.1 mm). The subject is the DICOM PatientID.
- **a folder of DICOM series** (ct, no dose words): full-dose CT, degraded by the task; also
  single CT NIfTI volumes in HU. One subject per PatientID (or volume).
- **folders of images** (pathology): 8-bit RGB PNG/TIFF images cut into tiles; one subject each.

Everything is checked before any image is decoded: a missing partner, a shape mismatch, a
non-CT DICOM for the CT task or an unreadable file raise ValueError naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.dicom import read_dicom, read_dicom_header, slice_position
from ..io.formats import find_inputs, read_image
from ..io.nifti import read_nifti
from .samples import DEFAULT_SLICE_GAP_MM, RealPair, Sample, SourceSet, rgb_tiles, safe_name

FULL_WORDS = ("full", "hq", "high")
LOW_WORDS = ("low", "lq", "quarter")
POSITION_TOLERANCE_MM = 0.1
GROUP = "user"


def dose_word(name: str) -> tuple[str | None, str]:
    """(``"full"``/``"low"``/None, the name without its dose word) of a folder name."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]
    for kind, words in (("full", FULL_WORDS), ("low", LOW_WORDS)):
        hits = [t for t in tokens if t in words]
        if hits:
            return kind, " ".join(t for t in tokens if t != hits[0])
    return None, name.lower()


class _LastVolume:
    """Reads NIfTI volumes, keeping only the last one in memory (samples come volume by volume)."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._pixels: np.ndarray | None = None

    def __call__(self, path: Path) -> np.ndarray:
        if path != self._path:
            self._pixels, self._path = read_nifti(path).pixels, path
        return self._pixels


def _nifti_geometry(path: Path) -> tuple[tuple[int, ...], float, float]:
    """(shape [D, H, W], in-plane pixel size, slice spacing) from the header only."""
    import nibabel

    try:
        image = nibabel.load(str(path))
        shape = tuple(int(s) for s in image.shape)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable NIfTI file: {type(err).__name__}: {err}") from err
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got NIfTI shape {shape}")
    zooms = np.linalg.norm(np.asarray(image.affine)[:3, :3], axis=0)
    return shape[::-1], float(zooms[0]), float(zooms[2])


def _nifti_pair_folders(root: Path) -> tuple[Path, Path] | None:
    if not root.is_dir():
        return None
    kinds: dict[str, Path] = {}
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        kind, rest = dose_word(child.name)
        if kind is not None and not rest and any(child.glob("*.nii*")):
            kinds.setdefault(kind, child)
    return (kinds["full"], kinds["low"]) if len(kinds) == 2 else None


def nifti_pairs(full_dir: Path, low_dir: Path, *, cache: _LastVolume) -> list[Sample]:
    samples = []
    for full in sorted(full_dir.glob("*.nii*")):
        low = low_dir / full.name
        if not low.is_file():
            raise ValueError(f"{full}: no low-dose partner; expected {low}")
        shape, pixel, spacing = _nifti_geometry(full)
        low_shape = _nifti_geometry(low)[0]
        if low_shape != shape:
            raise ValueError(f"{low} has shape {low_shape} but its full-dose partner {full} has {shape}; "
                             "expected equal shapes")
        stem = full.name.split(".nii")[0]
        samples += [Sample(name=safe_name(stem, f"z{z:04d}"), subject=f"nifti:{stem}", group=GROUP,
                           position=z * spacing, origin=f"{full} slice {z} (low dose {low})", pixel_size_mm=pixel,
                           load=(lambda z=z, full=full, low=low: RealPair(
                               hq=cache(full)[z].copy(), lq=cache(low)[z].copy(),
                               record={"hq": f"{full} slice {z}", "lq": f"{low} slice {z}"})))
                    for z in range(shape[0])]
    orphans = sorted({p.name for p in low_dir.glob("*.nii*")} - {p.name for p in full_dir.glob("*.nii*")})
    if orphans:
        raise ValueError(f"{low_dir / orphans[0]}: no full-dose partner; expected {full_dir / orphans[0]}")
    return samples


def _dicom_series(files: Sequence[Path]) -> dict[tuple[Path, str], list[tuple[float, Path, Any]]]:
    """CT DICOM headers grouped by (folder, SeriesInstanceUID): [(position, path, header)] sorted."""
    series: dict[tuple[Path, str], list[tuple[float, Path, Any]]] = {}
    for path in files:
        ds = read_dicom_header(path, require_modality="CT")
        key = (path.parent, str(getattr(ds, "SeriesInstanceUID", "")))
        series.setdefault(key, []).append((slice_position(ds), path, ds))
    return {k: sorted(v, key=lambda item: item[0]) for k, v in series.items()}


def _subject(ds: Any, fallback: Path) -> str:
    return str(getattr(ds, "PatientID", "") or fallback.name)


def mayo_pairs(series: dict[tuple[Path, str], list[tuple[float, Path, Any]]]) -> list[Sample]:
    """Full/quarter-dose slices paired by position (see the module docstring)."""
    by_key: dict[tuple[Path, str], dict[str, list[tuple[float, Path, Any]]]] = {}
    for (folder, _), slices in series.items():
        kind, rest = dose_word(folder.name)
        if kind is None:
            raise ValueError(f"{folder}: a DICOM series without a dose word beside full/quarter-dose series; "
                             f"expected folder names with one of {FULL_WORDS + LOW_WORDS}")
        doses = by_key.setdefault((folder.parent, rest), {})
        if kind in doses:
            raise ValueError(f"{folder}: a second {kind}-dose series for {folder.parent} '{rest}'; expected one")
        doses[kind] = slices
    samples = []
    for (parent, rest), doses in sorted(by_key.items()):
        if len(doses) != 2:
            have = next(iter(doses))
            raise ValueError(f"{doses[have][0][1].parent}: a {have}-dose series with no "
                             f"{'quarter' if have == 'full' else 'full'}-dose partner in {parent}")
        low_positions = np.asarray([p for p, _, _ in doses["low"]])
        used: set[int] = set()
        for position, full_path, ds in doses["full"]:
            j = int(np.argmin(np.abs(low_positions - position)))
            if abs(low_positions[j] - position) > POSITION_TOLERANCE_MM:
                raise ValueError(f"{full_path}: no quarter-dose slice at position {position:.2f} mm in "
                                 f"{doses['low'][0][1].parent} (nearest {low_positions[j]:.2f} mm; expected one "
                                 f"within {POSITION_TOLERANCE_MM} mm)")
            low_path, low_ds = doses["low"][j][1], doses["low"][j][2]
            shapes = [(int(d.Rows), int(d.Columns)) for d in (ds, low_ds)]
            if shapes[0] != shapes[1]:
                raise ValueError(f"{low_path} has shape {shapes[1]} but its full-dose partner {full_path} has "
                                 f"{shapes[0]}; expected equal shapes")
            used.add(j)
            subject = _subject(ds, parent)
            samples.append(Sample(
                name=safe_name(subject, rest, f"{position:+09.2f}"), subject=subject, group=GROUP, position=position,
                origin=f"{full_path} (quarter dose {low_path})", pixel_size_mm=float(ds.PixelSpacing[0]),
                load=(lambda f=full_path, q=low_path: RealPair(
                    hq=read_dicom(f, require_modality="CT").pixels, lq=read_dicom(q, require_modality="CT").pixels,
                    record={"hq": str(f), "lq": str(q)}))))
        unpaired = sorted(set(range(len(low_positions))) - used)
        if unpaired:
            path = doses["low"][unpaired[0]][1]
            raise ValueError(f"{path}: quarter-dose slice at {low_positions[unpaired[0]]:.2f} mm has no full-dose "
                             f"partner in {doses['full'][0][1].parent}")
    return samples


def ct_slices(files: Sequence[Path], *, cache: _LastVolume) -> tuple[list[Sample], str]:
    """Mayo-layout pairs, or full-dose CT for the simulation (DICOM series slices and single
    NIfTI volumes in HU); and which of the two it is."""
    dicoms = [p for p in files if not p.name.lower().endswith((".nii", ".nii.gz"))]
    series = _dicom_series(dicoms)
    if any(dose_word(folder.name)[0] for folder, _ in series):
        return mayo_pairs(series), "acquired full/quarter-dose DICOM pairs (Mayo layout)"
    samples = [Sample(name=safe_name(_subject(ds, folder), path.stem), subject=_subject(ds, folder), group=GROUP,
                      position=position, origin=str(path), pixel_size_mm=float(ds.PixelSpacing[0]),
                      load=(lambda path=path: read_dicom(path, require_modality="CT").pixels))
               for (folder, _), slices in series.items() for position, path, ds in slices]
    for volume in (p for p in files if p not in dicoms):
        shape, pixel, spacing = _nifti_geometry(volume)
        stem = volume.name.split(".nii")[0]
        samples += [Sample(name=safe_name(stem, f"z{z:04d}"), subject=f"nifti:{stem}", group=GROUP,
                           position=z * spacing, origin=f"{volume} slice {z}", pixel_size_mm=pixel,
                           load=(lambda z=z, volume=volume: cache(volume)[z].copy())) for z in range(shape[0])]
    return samples, "full-dose CT (degraded by the task)"


def image_tiles(files: Sequence[Path], *, tile_size: int) -> list[Sample]:
    samples = []
    for path in files:
        image = read_image(path)
        pixels = image.pixels
        if image.is_volume or pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.max() > 255 or pixels.min() < 0:
            raise ValueError(f"{path}: expected an 8-bit RGB image for pathology, got {pixels.dtype} {pixels.shape} "
                             f"with range [{pixels.min():g}, {pixels.max():g}]")
        read: Callable[[int, int], np.ndarray] = lambda t, l, p=pixels: p[t:t + tile_size, l:l + tile_size]
        samples += rgb_tiles(image_id=safe_name(path.stem), subject=str(path), group=GROUP, origin=str(path),
                             shape=pixels.shape, tile=tile_size, read=read, min_tissue=0.0, max_tiles=None)
    return samples


def user_sources(task: str, *, paths: Sequence[Path], tile_size: int) -> SourceSet:
    """The samples in ``paths`` for ``task`` (see the module docstring)."""
    cache = _LastVolume()
    samples: list[Sample] = []
    records = []
    for root in map(Path, paths):
        if not root.exists():
            raise ValueError(f"{root}: no such file or folder (given as --source)")
        pair_dirs = _nifti_pair_folders(root)
        if pair_dirs is not None and task in ("ct", "pet"):
            found, kind = nifti_pairs(*pair_dirs, cache=cache), "paired NIfTI volumes"
        else:
            items, errors = find_inputs([root])
            if errors:
                raise ValueError(errors[0][1])
            files = [item.path for item in items]
            if task == "pet":
                raise ValueError(f"{root}: expected paired PET volumes: a folder with 'full' and 'low' sub-folders "
                                 "of NIfTI volumes with the same names")
            if task == "ct":
                found, kind = ct_slices(files, cache=cache)
            else:
                found, kind = image_tiles(files, tile_size=tile_size), "RGB images cut into tiles"
        if not found:
            raise ValueError(f"{root}: no usable {task} images found")
        samples += found
        records.append({"id": f"user:{root}", "group": GROUP, "status": "used", "path": str(root), "kind": kind,
                        "licence": "the user's data", "subjects": sorted({s.subject for s in found}),
                        "images": len(found)})
    gap = float(tile_size) if task == "pathology" else DEFAULT_SLICE_GAP_MM
    return SourceSet(samples=samples, records=records, gaps={GROUP: gap})
