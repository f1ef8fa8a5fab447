"""Region backends: seconds per 512x512 image and regions on the reference example.

    python benchmarks/regions.py               # all rows (~2 min on 2 cores)
    python benchmarks/regions.py --skip-vit-b  # without the full-size ViT-B row (~20 s)

The image is the authors' example (tests/fixtures/reference/reference_example/input_img.png, a
512x512 8-bit chest CT slice). Each backend sees it through the `auto` window (8-bit: as is).
Time: median of --repeats runs after one warm-up (one run for ViT-B), single process, the
threads torch chooses. Regions: distinct labels in the map. Agreement with the authors' SAM
label map (39 regions): variation of information (VI, lower is closer; 0 = same partition)
and the adapted Rand error (ARE, 0 = same).

No SAM checkpoint can be downloaded here, so the SAM rows use random weights and say so:
"tiny" is the test stand-in (2-layer ViT at 64x64: the cost of the mask generator's point
grid, mask upsampling and filtering, not of a real encoder); "ViT-B arch." is the real ViT-B
architecture with random weights: the encoder cost of the paper's model is real, but random
weights keep different masks, so its post-processing time and region count are not those of
a trained SAM.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ratmir.regions import apply_window, build_backend, load_label_map, parse_window, read_image, resolve_window

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "fixtures" / "reference" / "reference_example"
SAM_SETTINGS = {"points_per_side": 32}  # the generator's defaults otherwise (the paper's setting)


def load_example() -> tuple[np.ndarray, np.ndarray | None, str]:
    """The 512x512 image in [0, 1], the reference SAM label map (or None), and a description."""
    if (EXAMPLE / "input_img.png").is_file():
        image = read_image(EXAMPLE / "input_img.png").pixels
        reference = load_label_map(EXAMPLE / "indexed_mask.nii")
        source = "reference example input_img.png (512x512 chest CT, 8-bit)"
    else:  # example missing: a real CT slice that pydicom ships, upsampled to 512x512
        from pydicom import examples
        from skimage.transform import resize

        image = resize(read_image(examples.get_path("ct")).pixels, (512, 512), order=1)
        reference, source = None, "pydicom examples.ct upsampled to 512x512 (no reference map)"
    low, high = resolve_window(image, spec=parse_window("auto"))
    return apply_window(image, low=low, high=high), reference, source


def tiny_sam():
    """The tests' tiny random SAM (tests/regions/tiny_sam.py)."""
    spec = importlib.util.spec_from_file_location("tiny_sam", ROOT / "tests" / "regions" / "tiny_sam.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_sam()


def vit_b_random():
    from segment_anything import sam_model_registry

    return sam_model_registry["vit_b"]()


def time_backend(backend, image: np.ndarray, *, repeats: int) -> tuple[float, np.ndarray]:
    labels = backend.segment(image)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        labels = backend.segment(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times), labels


def agreement(reference: np.ndarray | None, labels: np.ndarray) -> str:
    if reference is None:
        return "– | –"
    from skimage.metrics import adapted_rand_error, variation_of_information

    vi = sum(variation_of_information(reference, labels))
    return f"{vi:.2f} | {adapted_rand_error(reference, labels)[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-vit-b", action="store_true", help="skip the full-size ViT-B (random weights) row")
    args = parser.parse_args()

    import torch

    image, reference, source = load_example()
    rows = [
        ("felzenszwalb", "felzenszwalb", {}, args.repeats),
        ("slic", "slic", {}, args.repeats),
        ("grid (64 px)", "grid", {}, args.repeats),
        ("none", "none", {}, args.repeats),
        ("sam: tiny random stand-in (tests), 32x32 points", "sam", {"model": tiny_sam(), **SAM_SETTINGS}, 1),
    ]
    if not args.skip_vit_b:
        rows.append(("sam: ViT-B arch., random weights, 32x32 points", "sam",
                     {"model": vit_b_random(), "points_per_batch": 64, **SAM_SETTINGS}, 0))
    print(f"image: {source}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"python {sys.version.split()[0]}\n")
    print("| backend | s / 512² image | regions on the example | VI vs ref. SAM | ARE vs ref. SAM |")
    print("|---|---|---|---|---|")
    if reference is not None:
        print(f"| reference SAM label map (authors', ViT-B) | – | {np.unique(reference).size} | 0.00 | 0.00 |")
    for title, name, options, repeats in rows:
        backend = build_backend(name, **options)
        if repeats:
            seconds, labels = time_backend(backend, image, repeats=repeats)
        else:  # one timed run, no warm-up (too slow to repeat here)
            start = time.perf_counter()
            labels = backend.segment(image)
            seconds = time.perf_counter() - start
        print(f"| {title} | {seconds:.3f} | {np.unique(labels).size} | {agreement(reference, labels)} |", flush=True)


if __name__ == "__main__":
    main()
