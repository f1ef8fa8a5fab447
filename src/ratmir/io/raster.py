"""PNG (8/16-bit, Pillow) and TIFF (tifffile): values as stored, shape [H, W] or [H, W, 3]."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


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
    with an explicit window)."""
    from PIL import Image

    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint16 and pixels.ndim == 2:
        image = Image.fromarray(pixels)  # mode I;16
    elif pixels.dtype == np.uint8 and (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] == 3)):
        image = Image.fromarray(pixels)
    else:
        raise ValueError(f"PNG needs uint8 [H, W] / [H, W, 3] or uint16 [H, W], got {pixels.dtype} {pixels.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def read_tiff(path: str | os.PathLike) -> np.ndarray:
    import tifffile

    path = Path(path)
    try:
        pixels = tifffile.imread(path)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable TIFF image: {type(err).__name__}: {err}") from err
    if pixels.size == 0:  # tifffile only warns about a corrupt first page
        raise ValueError(f"{path}: not a readable TIFF image: no image data")
    return pixels


def write_tiff(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Write any numeric [H, W] or [H, W, 3] array (RGB photometric for 3 channels)."""
    import tifffile

    pixels = np.ascontiguousarray(pixels)
    rgb = pixels.ndim == 3 and pixels.shape[-1] == 3
    if pixels.ndim != 2 and not rgb:
        raise ValueError(f"TIFF writer expects [H, W] or [H, W, 3], got shape {pixels.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, pixels, photometric="rgb" if rgb else "minisblack")
    return path
