"""Regenerate docs/figures/regions_reference_example.png.

    python benchmarks/regions_figure.py

The authors' example (tests/fixtures/reference/reference_example/input_img.png) with region
boundaries from, left to right: their SAM (ViT-B) label map `indexed_mask.nii`, ratmir's
felzenszwalb backend and its slic backend (default settings, `auto` window).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ratmir.regions import (
    apply_window, boundary_overlay, build_backend, load_label_map, parse_window, read_image, resolve_window,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "fixtures" / "reference" / "reference_example"
OUT = ROOT / "docs" / "figures" / "regions_reference_example.png"
TITLE_HEIGHT, GAP = 34, 8


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def panel(image01: np.ndarray, labels: np.ndarray, title: str) -> Image.Image:
    overlay = Image.fromarray(boundary_overlay(image01, labels))
    canvas = Image.new("RGB", (overlay.width, overlay.height + TITLE_HEIGHT), "white")
    canvas.paste(overlay, (0, TITLE_HEIGHT))
    text = f"{title}: {np.unique(labels).size} regions"
    ImageDraw.Draw(canvas).text((6, 7), text, fill="black", font=_font(18))
    return canvas


def main() -> None:
    if not (EXAMPLE / "input_img.png").is_file():
        raise SystemExit(f"reference example not found at {EXAMPLE} (it ships in tests/fixtures/reference)")
    image = read_image(EXAMPLE / "input_img.png").pixels
    low, high = resolve_window(image, spec=parse_window("auto"))
    image01 = apply_window(image, low=low, high=high)
    maps = [
        ("reference SAM (ViT-B)", load_label_map(EXAMPLE / "indexed_mask.nii", expected_shape=image.shape)),
        ("felzenszwalb", build_backend("felzenszwalb").segment(image01)),
        ("slic", build_backend("slic").segment(image01)),
    ]
    panels = [panel(image01, labels, title) for title, labels in maps]
    width = sum(p.width for p in panels) + GAP * (len(panels) - 1)
    figure = Image.new("RGB", (width, panels[0].height), "white")
    x = 0
    for p in panels:
        figure.paste(p, (x, 0))
        x += p.width + GAP
    OUT.parent.mkdir(parents=True, exist_ok=True)
    figure.save(OUT, optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
