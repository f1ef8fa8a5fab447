"""Training step time and peak memory of the default RAT by activation-checkpointing mode.

One training step (forward, focal region loss, backward, Adam) at 256x256 with 20 Voronoi
regions, each measured in a fresh process (benchmarks/attention.py's child): time of the second
step, peak resident memory of the first over the resident size before it.

    python benchmarks/training_memory.py                 # modes none/unet/all at batch 1, 2; 'all' at 8
    python benchmarks/training_memory.py --authors       # + the authors' computation (dense mask) at batch 1
    python benchmarks/training_memory.py --batches 1 --no-paper

It ends with the floor of a batch-1 step per mode: the step's FLOPs (``FlopCounterMode`` for
convolutions and linear layers, forward, backward and recomputation; attention estimated from
the segment sizes, as CPU flash attention is not counted) over the fp32 and bf16 matmul limits
measured in the same run.

Stop other jobs first: times are only meaningful on an idle machine. Batch 8 without
checkpointing needs more than this machine's 24 GB: it is extrapolated from batches 1 and 2
(memory is linear in the batch), and labelled so.
"""

from __future__ import annotations

import argparse

import torch

from attention import run, voronoi_regions  # benchmarks/attention.py
from profile_rat import attention_gflop, matmul_gflops  # benchmarks/profile_rat.py

from ratmir.models import RAT


def step_gflop(mode: str, size: int) -> float:
    """FLOPs of one training step at batch 1 (see the module docstring), in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    from ratmir.losses import FocalRegionLoss

    torch.manual_seed(0)
    model = RAT(checkpointing=mode)
    x, target, regions = torch.rand(1, 1, size, size), torch.rand(1, 1, size, size), voronoi_regions(size, 20)
    with FlopCounterMode(display=False) as counter:
        FocalRegionLoss()(model(x, regions), target, regions).backward()
    # flash backward ~2.5x its forward (QK^T again, then dV, dP, dQ, dK); `all` runs forward twice
    attention = attention_gflop(model, regions) * (4.5 if mode == "all" else 3.5)
    return counter.get_total_flops() / 1e9 + attention


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--modes", nargs="+", default=["none", "unet", "all"])
    ap.add_argument("--paper-batch", type=int, default=8)
    ap.add_argument("--paper-mode", default="all", help="checkpointing of the paper configs (configs/ct.yaml)")
    ap.add_argument("--no-paper", action="store_true", help="skip the paper-batch measurement")
    ap.add_argument("--authors", action="store_true", help="also the dense-mask computation at batch 1")
    ap.add_argument("--amp", action="store_true", help="also every mode at batch 1 under bf16 autocast")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--timeout", type=float, default=1200.0)
    args = ap.parse_args()
    default = RAT().checkpointing
    print(f"torch {torch.__version__}, {args.threads} threads, {args.size}^2, default checkpointing={default!r}\n")
    print("| backend | checkpointing | precision | batch | step (s) | peak (MB) |\n|---|---|---|---|---|---|")
    results: dict[tuple[str, str, int], dict | None] = {}

    def measure(backend: str, mode: str, batch: int, amp: bool = False) -> None:
        r = run("train", backend, args.size, 20, args.threads, args.timeout, checkpointing=mode, batch=batch, amp=amp)
        if not amp:
            results[backend, mode, batch] = r
        cell = "failed or timed out | -" if r is None else f"{r['seconds']:.2f} | {r['peak_mb']:.0f}"
        print(f"| {backend} | {mode} | {'bf16' if amp else 'fp32'} | {batch} | {cell} |", flush=True)

    for mode in args.modes:
        for batch in args.batches:
            measure("sparse", mode, batch)
    if args.amp:
        for mode in args.modes:
            measure("sparse", mode, 1, amp=True)
    if not args.no_paper:
        measure("sparse", args.paper_mode, args.paper_batch)
    if args.authors:
        measure("dense", "none", 1)

    print()
    base = {m: results.get(("sparse", m, 1)) for m in args.modes}
    if base.get("none"):
        for mode in args.modes:
            if mode != "none" and base.get(mode):
                print(f"{mode} vs none at batch 1: time x{base[mode]['seconds'] / base['none']['seconds']:.2f}, "
                      f"peak memory x{base[mode]['peak_mb'] / base['none']['peak_mb']:.2f}")
    b1, b2 = min(args.batches), max(args.batches)
    for mode in args.modes:
        lo, hi = results.get(("sparse", mode, b1)), results.get(("sparse", mode, b2))
        if lo and hi and b2 > b1:
            per = (hi["peak_mb"] - lo["peak_mb"]) / (b2 - b1)
            est = lo["peak_mb"] + per * (args.paper_batch - b1)
            print(f"{mode}: batch {args.paper_batch} extrapolated from batches {b1}, {b2}: {est / 1024:.1f} GB")
    limits = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"\nfloor of a batch-1 step at {args.size}^2 (matmul 2048^2: fp32 {limits['fp32']:.0f}, "
          f"bf16 {limits['bf16']:.0f} GFLOPS, this run):")
    for mode in args.modes:
        gflop = step_gflop(mode, args.size)
        print(f"  {mode}: {gflop:.0f} GFLOP -> fp32 >= {gflop / limits['fp32']:.2f} s, bf16 >= {gflop / limits['bf16']:.2f} s")
    dense = results.get(("dense", "none", 1))
    if dense:
        print(f"authors' computation (dense mask, no checkpointing), batch 1 measured: {dense['peak_mb'] / 1024:.1f} GB; "
              f"batch {args.paper_batch} extrapolated linearly: {dense['peak_mb'] * args.paper_batch / 1024:.0f} GB")


if __name__ == "__main__":
    main()
