"""Regenerate docs/figures/regions_reference_example.png and docs/figures/regions_medsam.png.

    python benchmarks/regions_figure.py [--example DIR]

regions_reference_example.png: the authors' example
(tests/fixtures/reference/reference_example/input_img.png) with region boundaries
from, left to right: their SAM (ViT-B) label map `indexed_mask.nii`, ratmir's felzenszwalb
backend and its slic backend (default settings, `auto` window).

regions_medsam.png: top row the same example with the authors' SAM map, ratmir's medsam
(LiteMedSAM, real weights) and felzenszwalb; bottom row a real 512x512 abdominal CT slice
(pydicom-data's explicit_VR-UN.dcm, window ct:40,400) with medsam and felzenszwalb (no
authors' map exists for it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ratmir.regions import (
    apply_window, boundary_overlay, build_backend, load_label_map, parse_window, read_image, resolve_window,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "fixtures" / "reference" / "reference_example"
OUT = ROOT / "docs" / "figures" / "regions_reference_example.png"
OUT_MEDSAM = ROOT / "docs" / "figures" / "regions_medsam.png"
CT_SLICE, CT_WINDOW = "explicit_VR-UN.dcm", "ct:40,400"
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


def blank(like: Image.Image, title: str) -> Image.Image:
    canvas = Image.new("RGB", like.size, "white")
    ImageDraw.Draw(canvas).text((6, 7), title, fill="black", font=_font(18))
    return canvas


def grid(rows: list[list[Image.Image]]) -> Image.Image:
    width = max(sum(p.width for p in row) + GAP * (len(row) - 1) for row in rows)
    height = sum(row[0].height for row in rows) + GAP * (len(rows) - 1)
    figure = Image.new("RGB", (width, height), "white")
    y = 0
    for row in rows:
        x = 0
        for p in row:
            figure.paste(p, (x, y))
            x += p.width + GAP
        y += row[0].height + GAP
    return figure


def windowed(path: Path, spec: str) -> np.ndarray:
    image = read_image(path).pixels
    low, high = resolve_window(image, spec=parse_window(spec))
    return apply_window(image, low=low, high=high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=EXAMPLE, help="folder of the reference example")
    example = parser.parse_args().example
    if not (example / "input_img.png").is_file():
        raise SystemExit(f"reference example not found at {example} (it ships in tests/fixtures/reference)")
    from pydicom.data import get_testdata_file

    from ratmir.regions.medsam import load_medsam_model

    image01 = windowed(example / "input_img.png", "auto")
    reference = load_label_map(example / "indexed_mask.nii", expected_shape=image01.shape)
    felzenszwalb, slic = build_backend("felzenszwalb"), build_backend("slic")
    medsam = build_backend("medsam", model=load_medsam_model())
    fz_example = felzenszwalb.segment(image01)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    grid([[panel(image01, reference, "reference SAM (ViT-B)"), panel(image01, fz_example, "felzenszwalb"),
           panel(image01, slic.segment(image01), "slic")]]).save(OUT, optimize=True)
    print(f"wrote {OUT}")

    ct01 = windowed(Path(get_testdata_file(CT_SLICE)), CT_WINDOW)
    top = [panel(image01, reference, "authors' SAM (ViT-B)"), panel(image01, medsam.segment(image01), "medsam"),
           panel(image01, fz_example, "felzenszwalb")]
    bottom = [panel(ct01, medsam.segment(ct01), "CT slice: medsam"),
              panel(ct01, felzenszwalb.segment(ct01), "CT slice: felzenszwalb")]
    bottom.insert(0, blank(bottom[0], "abdominal CT (pydicom-data): no authors' map"))
    grid([top, bottom]).save(OUT_MEDSAM, optimize=True)
    print(f"wrote {OUT_MEDSAM}")


if __name__ == "__main__":
    main()
