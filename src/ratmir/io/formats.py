"""Finding input images in files and folders, and reading any supported format: PNG, TIFF,
DICOM, NIfTI (2-D, or volumes).

Pixel values are returned as they are stored (HU after DICOM's modality LUT, NIfTI scaling
applied); the intensity window comes later. Arrays are in SimpleITK's order: [H, W] (or
[H, W, 3]) for an image, [D, H, W] (or [D, H, W, 3]) for a volume.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dicom import looks_like_dicom, read_dicom
from .nifti import read_nifti
from .raster import read_png, read_tiff_stack

# Recognised suffixes -> reader; files without a suffix are read as DICOM if they look like one.
FORMATS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dcm": "dicom", ".dicom": "dicom",
           ".ima": "dicom", ".nii": "nifti", ".nii.gz": "nifti",
           ".svs": "slide", ".ndpi": "slide", ".mrxs": "slide", ".scn": "slide", ".bif": "slide"}


@dataclass(frozen=True)
class InputFile:
    """An image file and its output name (relative to the output folder, without suffix)."""

    path: Path
    stem: str


@dataclass(frozen=True)
class LoadedImage:
    pixels: np.ndarray
    is_volume: bool
    affine: np.ndarray | None  # NIfTI inputs keep their geometry in the label map

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """(H, W), or (D, H, W) for a volume: the shape of its label map."""
        rgb = self.pixels.ndim == (4 if self.is_volume else 3)
        return tuple(self.pixels.shape[:-1] if rgb else self.pixels.shape)


def split_name(path: Path) -> tuple[str, str | None]:
    """(name without suffix, format or None): ``a.nii.gz`` -> ``("a", "nifti")``."""
    name = path.name
    if name.lower().endswith(".nii.gz"):
        return name[:-7], "nifti"
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return name[: -len(suffix)], FORMATS[suffix]
    if not suffix and looks_like_dicom(path):
        return name, "dicom"
    return (path.stem if suffix else name), None


def find_inputs(paths: Sequence[str | os.PathLike]) -> tuple[list[InputFile], list[tuple[Path, str]]]:
    """Expand files and folders (recursively) into images, and list the paths that cannot be used.

    Folders contribute their supported files (hidden files and DICOMDIR are skipped) and keep their
    sub-folder layout in the output names; a file named directly must be supported. Two inputs
    that would write the same label map are an error for the second.
    """
    found: list[InputFile] = []
    errors: list[tuple[Path, str]] = []
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                rel = path.relative_to(root)
                if any(part.startswith(".") for part in rel.parts) or path.name.upper() == "DICOMDIR":
                    continue  # hidden files; a DICOMDIR index holds no image
                stem, fmt = split_name(path)
                if fmt is not None:
                    found.append(InputFile(path, str(rel.with_name(stem))))
        elif root.is_file():
            stem, fmt = split_name(root)
            if fmt is None:
                errors.append((root, f"{root}: unsupported file type {root.suffix or '(no suffix)'!r}: expected one of "
                                     f"{sorted(FORMATS)} or a DICOM file"))
            else:
                found.append(InputFile(root, stem))
        else:
            errors.append((root, f"{root}: no such file or folder"))
    unique: dict[str, InputFile] = {}
    for item in found:
        if item.stem in unique:
            other = unique[item.stem].path
            errors.append((item.path, f"{item.path}: writes the same label map '{item.stem}' as {other}; "
                                      "pass them in separate runs or folders"))
        else:
            unique[item.stem] = item
    return list(unique.values()), errors


def _read_png(path: Path) -> LoadedImage:
    return _check_planar(read_png(path))


def _read_tiff(path: Path) -> LoadedImage:
    """A multi-page TIFF is a volume [pages, H, W(, 3)] (docs/decisions.md), one page an image;
    grey or colour from the samples per pixel (:func:`~ratmir.io.raster.read_tiff_stack`)."""
    stack = read_tiff_stack(path)
    if stack.ndim == 4 and stack.shape[-1] not in (3, 4):
        raise ValueError(f"expected grey or RGB pages, got {stack.shape[-1]} samples per pixel")
    if stack.ndim == 4:
        stack = stack[..., :3]  # alpha dropped
    volume = stack.shape[0] > 1
    return LoadedImage(stack if volume else stack[0], volume, None)


def _check_planar(pixels: np.ndarray) -> LoadedImage:
    """[H, W] or [H, W, 3|4] (alpha dropped)."""
    rgb = pixels.ndim == 3 and pixels.shape[-1] in (3, 4)
    if pixels.ndim != 2 and not rgb:
        raise ValueError(f"expected a grey or RGB image, got array shape {pixels.shape}")
    return LoadedImage(pixels[..., :3] if rgb else pixels, False, None)


def _read_dicom(path: Path) -> LoadedImage:
    image = read_dicom(path)
    return LoadedImage(image.pixels, image.is_volume, None)


def _read_nifti(path: Path) -> LoadedImage:
    image = read_nifti(path)
    return LoadedImage(image.pixels, image.pixels.ndim == 3, image.affine)


_READERS = {"png": _read_png, "tiff": _read_tiff, "dicom": _read_dicom, "nifti": _read_nifti}


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read one image file; ValueError naming the file when it is unsupported or unreadable."""
    path = Path(path)
    _, fmt = split_name(path)
    if fmt == "slide":
        raise ValueError(f"{path}: whole-slide images are read region by region (`ratmir restore`), "
                         "not as one array")
    if fmt is None:
        raise ValueError(f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; expected one of "
                         f"{sorted(FORMATS)} or a DICOM file")
    try:
        image = _READERS[fmt](path)
    except Exception as exc:  # noqa: BLE001 - every reader failure becomes one clear error
        raise ValueError(f"{path}: cannot read as {fmt}: {type(exc).__name__}: {exc}") from exc
    if min(image.spatial_shape) < 1:
        raise ValueError(f"{path}: empty image, shape {image.pixels.shape}")
    if not (np.issubdtype(image.pixels.dtype, np.number) and not np.iscomplexobj(image.pixels)):
        raise ValueError(f"{path}: pixel type {image.pixels.dtype} is not a real number type")
    return image
