"""How much does a trained RAT lean on each attention branch? Knock one out and score again.

Every RAT layer adds ``lambda_ra * R-MSA(LN(x))`` and ``lambda_wa * W-MSA(LN(x))`` to its input.
For each trained run this sets ``lambda_ra`` (the region branch), ``lambda_wa`` (the window
branch) or both to zero in a copy of its weights, scores the copy on the same test images with
``ratmir.engine.evaluate`` (the dataset's own region maps), and reports the change against the
intact model per image: paired, with a bootstrap interval over runs (seeds) and images.
A branch the output does not depend on costs nothing to remove; a test-time change of the region
maps can then not matter either.

    python benchmarks/attention_branches.py studies/ct_table4_warmup/runs/rat/seed*/ \\
        --data studies/ct_table4_warmup/datasets/ct --label ct_table4_rat
    python benchmarks/attention_branches.py ct --data DATASET --max-images 12 --label packaged_ct

Prints one table and, for the first run on its first image, the RMS of each layer's updates
(lambda_ra * R-MSA, each MLP, lambda_wa * W-MSA) beside the RMS of the features they are added
to; writes ``benchmarks/results/attention_branches/LABEL.json`` (per run, variant and image: the
scores; committed) unless ``--no-save``.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from ratmir._files import write_text_atomic
from ratmir.data import PairedDataset
from ratmir.engine.evaluate import evaluate
from ratmir.engine.region_sources import RegionProvider
from ratmir.engine.stats import paired_comparison
from ratmir.models import load_pretrained, read_metadata, save_pretrained
from ratmir.models.hub import resolve_weights

RESULTS = Path(__file__).resolve().parent / "results" / "attention_branches"
VARIANTS = {"intact": (), "no_region_branch": ("lambda_ra",), "no_window_branch": ("lambda_wa",),
            "no_attention": ("lambda_ra", "lambda_wa")}


def knocked_out(weights: Path, *, scales: tuple[str, ...], out: Path) -> Path:
    """A copy of ``weights`` with every parameter named ``*.<scale>`` for ``scale`` in ``scales`` set to 0."""
    model = load_pretrained(weights)
    hits = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.rsplit(".", 1)[-1] in scales:
                p.zero_()
                hits += 1
    if scales and not hits:
        raise ValueError(f"{weights}: no parameter named {scales} (a RAT with both attention branches expected)")
    meta = {k: v for k, v in read_metadata(weights).items() if k not in ("format", "ratmir_version", "architecture",
                                                                        "config")}
    return save_pretrained(model, out, metadata=meta)


def scores(weights: Path, *, data: Path, max_images: int, convention: str, work: Path) -> dict[str, float]:
    """PSNR per test image of ``weights`` (and of the input, as ``input/NAME``)."""
    summary = evaluate(weights, data=data, out=work, conventions=(convention,), figures=0, progress=False,
                       max_images=max_images)
    with open(summary.parent / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {(r["name"] if r["method"] == "model" else f"input/{r['name']}"): float(r["psnr"]) for r in rows}


def branch_rms(weights: Path, *, data: Path) -> list[dict[str, float]]:
    """Per RAT layer, on the first test image: the RMS of its input and of each update it adds."""
    model = load_pretrained(weights).eval()
    dataset = PairedDataset(data, "test")
    item = dataset[0]
    labels = RegionProvider("dataset", dataset)(0, item)[None]
    rows: list[dict[str, float]] = []

    def rms(t: torch.Tensor) -> float:
        return float(t.float().pow(2).mean().sqrt())

    def hook(layer: torch.nn.Module, part: str, scale: str | None):
        def record(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            rows[-1][part] = rms(output * getattr(layer, scale) if scale else output)
        return record

    handles = []
    for layer in (m for m in model.modules() if hasattr(m, "lambda_ra")):
        layer.strip_bytes = 0  # whole images, not row strips: one call per branch
        handles.append(layer.register_forward_pre_hook(lambda m, inputs: rows.append({"features": rms(inputs[0])})))
        for part, scale in (("ra", "lambda_ra"), ("mlp_ra", None), ("wa", "lambda_wa"), ("mlp_wa", None)):
            handles.append(getattr(layer, part).register_forward_hook(hook(layer, part, scale)))
    with torch.no_grad():
        model(item["lq"][None], labels)
    for h in handles:
        h.remove()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="RUN folders with model.safetensors (one per seed), weights "
                        "files or packaged model names")
    parser.add_argument("--data", type=Path, required=True, help="the prepared dataset they were trained on")
    parser.add_argument("--label", required=True, help="name of the result file")
    parser.add_argument("--max-images", type=int, default=8, help="test images, evenly spaced (default 8)")
    parser.add_argument("--convention", default="ct_window", help="metric convention (default ct_window)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    try:
        weights = {run: resolve_weights(Path(run) / "model.safetensors" if Path(run).is_dir() else run)
                   for run in args.runs}
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"Error: {err}") from None

    table: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, (run, w) in enumerate(weights.items()):
            table[run] = {}
            for variant, scales in VARIANTS.items():
                copy = knocked_out(w, scales=scales, out=Path(tmp) / f"{n}-{variant}.safetensors")
                table[run][variant] = scores(copy, data=args.data, max_images=args.max_images,
                                             convention=args.convention, work=Path(tmp) / f"{n}-{variant}")
                print(f"{run}: {variant} done", flush=True)

    runs = list(table)
    names = sorted(k for k in table[runs[0]]["intact"] if not k.startswith("input/"))
    arr = {v: np.array([[table[r][v][k] for k in names] for r in runs]) for v in VARIANTS}
    inp = np.array([[table[r]["intact"][f"input/{k}"] for k in names] for r in runs])
    print(f"\n{len(runs)} runs x {len(names)} images, {args.convention} PSNR; input {inp.mean():.2f} dB, "
          f"intact {arr['intact'].mean():.2f} dB (gain {arr['intact'].mean() - inp.mean():+.2f})")
    print("| variant | PSNR dB | variant − intact [95 % CI] | share of the gain lost |")
    print("|---|---|---|---|")
    gain = arr["intact"].mean() - inp.mean()
    for v in VARIANTS:
        if v == "intact":
            continue
        c = paired_comparison(arr[v], arr["intact"], method=v, reference="intact")
        print(f"| {v} | {arr[v].mean():.3f} | {c.mean_diff:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] | "
              f"{-c.mean_diff / gain:.1%} |")
    layers = branch_rms(weights[runs[0]], data=args.data)
    print(f"\nRMS per RAT layer of {runs[0]} on its first test image: features | lambda_ra*R-MSA | MLP | "
          "lambda_wa*W-MSA | MLP")
    for n, row in enumerate(layers):
        print(f"layer {n}: " + " | ".join(f"{row[k]:.4f}" for k in ("features", "ra", "mlp_ra", "wa", "mlp_wa")))
    if not args.no_save:
        path = RESULTS / f"{args.label}.json"
        record = {"data": str(args.data), "convention": args.convention, "max_images": args.max_images,
                  "variants": {v: list(s) for v, s in VARIANTS.items()}, "images": names, "runs": table,
                  "branch_rms": {"run": runs[0], "image": 0, "layers": layers}}
        write_text_atomic(path, json.dumps(record, indent=1))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
