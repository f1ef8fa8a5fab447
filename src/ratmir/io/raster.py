"""PNG (8/16-bit, Pillow) and TIFF (tifffile): values as stored, shape [H, W] or [H, W, 3]; TIFF
stacks (one 2-D image per page) as [pages, H, W] or [pages, H, W, C].

Every writer writes through a temporary file in the target's folder and renames it
(:func:`ratmir._files.atomic_path`), so an interrupted write never leaves a partial file under
the final name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._files import atomic_path, writer_suffix


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Grey (uint8/uint16) or RGB (uint8) pixels as stored; palettes and alpha dropped to RGB."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                pixels = np.array(im).astype(np.uint16 if im.mode.startswith("I;16") else np.int32)
            elif im.mode in ("L", "RGB"):
                pixels = np.array(im)
            elif im.mode in ("1", "LA"):
                pixels = np.array(im.convert("L"))
            else:
                pixels = np.array(im.convert("RGB"))
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable PNG image: {type(err).__name__}: {err}") from err
    return pixels


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Write uint8 grey/RGB or uint16 grey pixels; other dtypes are refused (convert first,
    with an explicit window). Atomic (see the module)."""
    from PIL import Image

    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint16 and pixels.ndim == 2:
        image = Image.fromarray(pixels)  # mode I;16
    elif pixels.dtype == np.uint8 and (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] == 3)):
        image = Image.fromarray(pixels)
    else:
        raise ValueError(f"PNG needs uint8 [H, W] / [H, W, 3] or uint16 [H, W], got {pixels.dtype} {pixels.shape}")
    path = Path(path)
    with atomic_path(path, suffix=writer_suffix(path)) as tmp:
        image.save(tmp, format="PNG")
    return path


def read_tiff(path: str | os.PathLike) -> np.ndarray:
    """The first series of a TIFF as tifffile returns it (one page: [H, W] or [H, W, 3]); for a
    multi-page stack prefer :func:`read_tiff_stack`, which decides from the page count."""
    import tifffile

    path = Path(path)
    try:
        pixels = tifffile.imread(path)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable TIFF image: {type(err).__name__}: {err}") from err
    if pixels.size == 0:  # tifffile only warns about a corrupt first page
        raise ValueError(f"{path}: not a readable TIFF image: no image data")
    return pixels


def read_tiff_stack(path: str | os.PathLike) -> np.ndarray:
    """The pages of a TIFF's first series as [pages, H, W] (one sample per pixel) or
    [pages, H, W, C] (C samples per pixel, e.g. RGB), with ``pages`` = 1 for a single image.

    Grey or colour is decided by the pages' samples per pixel and the stack by the page count,
    never by the array's shape: a 3-page grey stack is [3, H, W], one RGB page [1, H, W, 3].
    Reduced-resolution pages (pyramids, thumbnails) are not part of the first series.
    """
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            pixels, axes = series.asarray(), series.axes
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable TIFF image: {type(err).__name__}: {err}") from err
    if pixels.size == 0:
        raise ValueError(f"{path}: not a readable TIFF image: no image data")
    if "S" in axes:  # samples last, whether stored contiguous or planar
        pixels, axes = np.moveaxis(pixels, axes.index("S"), -1), axes.replace("S", "") + "S"
    keep = [i for i, a in enumerate(axes) if a in "YXS" or pixels.shape[i] > 1]
    pages = [axes[i] for i in keep if axes[i] not in "YXS"]
    if len(pages) > 1 or not {"Y", "X"} <= set(axes):
        raise ValueError(f"{path}: expected a stack of 2-D pages, got a TIFF series of axes {axes} "
                         f"and shape {pixels.shape}")
    pixels = pixels.reshape([pixels.shape[i] for i in keep])
    if not pages:
        pixels = pixels[None]
    return pixels[..., 0] if "S" in axes and pixels.shape[-1] == 1 else pixels


def write_tiff(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Write any numeric [H, W] or [H, W, 3] array (RGB photometric for 3 channels) as one page.
    Atomic (see the module); a stack of pages is :func:`write_tiff_stack`."""
    pixels = np.asarray(pixels)
    rgb = pixels.ndim == 3 and pixels.shape[-1] == 3
    if pixels.ndim != 2 and not rgb:
        raise ValueError(f"TIFF writer expects [H, W] or [H, W, 3], got shape {pixels.shape}")
    return _write_pages(Path(path), pixels[None], rgb=rgb)


def write_tiff_stack(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Write [pages, H, W] (grey) or [pages, H, W, 3] (RGB) as one page per image, which
    :func:`read_tiff_stack` reads back as the same array. Atomic (see the module)."""
    pixels = np.asarray(pixels)
    rgb = pixels.ndim == 4 and pixels.shape[-1] == 3
    if pixels.ndim != 3 and not rgb:
        raise ValueError(f"TIFF stack writer expects [pages, H, W] or [pages, H, W, 3], got shape {pixels.shape}")
    return _write_pages(Path(path), pixels, rgb=rgb)


def _write_pages(path: Path, pages: np.ndarray, *, rgb: bool) -> Path:
    import tifffile

    with atomic_path(path, suffix=writer_suffix(path)) as tmp:
        data = np.ascontiguousarray(pages[0] if pages.shape[0] == 1 else pages)
        tifffile.imwrite(tmp, data, photometric="rgb" if rgb else "minisblack")
    return path
