"""Region attention: sparse (ratmir) vs dense (the reference's -1000 mask), side by side.

Every measurement runs in a fresh subprocess. Peak memory is the extra resident memory of the
first step (VmHWM after resetting it, minus the resident size before the step: model, inputs
and, for training, the optimiser state it creates); time is that of the second step.

    python benchmarks/attention.py            # full run (~10 min on 2 cores)
    python benchmarks/attention.py --quick    # smaller sizes, a minute

Prints: (1) one training step (forward + backward + Adam) of the default model at 256x256 with
20 regions, per backend, and the dense/sparse ratios; (2) forward time and peak memory from
128x128 to 512x512 for both backends (dense is skipped where its mask would not fit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch


def voronoi_regions(size: int, num_regions: int, *, seed: int = 0) -> torch.Tensor:
    """An uneven partition of a size x size image into ``num_regions`` Voronoi cells [1, H, W]."""
    g = torch.Generator().manual_seed(seed)
    seeds = torch.rand(num_regions, 2, generator=g) * size
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pts = torch.stack((yy, xx), -1).reshape(-1, 1, 2).float()
    labels = ((pts - seeds) ** 2).sum(-1).argmin(-1)
    return labels.reshape(1, size, size)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _measure(mode: str, backend: str, size: int, regions: int, threads: int, checkpointing: bool | str = False,
             batch: int = 1, amp: bool = False) -> dict:
    """Runs in the child process."""
    from ratmir.losses import FocalRegionLoss
    from ratmir.models import RAT

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = RAT(attention_backend=backend, checkpointing=checkpointing)
    x = torch.rand(batch, 1, size, size)
    r = voronoi_regions(size, regions).expand(batch, -1, -1)
    target = torch.rand_like(x)
    loss_fn = FocalRegionLoss()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)

    def step() -> None:
        if mode == "train":
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):  # as `train.amp: bf16`
                y = model(x, r)
            loss_fn(y.float(), target, r).backward()
            opt.step()
        else:
            with torch.inference_mode():
                model.eval()(x, r)

    # Memory: the first step, from the resident size before it (so memory that a warm-up step
    # would leave in the allocator cannot hide any of the peak). Time: the second step.
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident size
    base = _rss_kib("VmRSS")
    step()
    peak = _rss_kib("VmHWM") - base
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak / 1024}


def run(mode: str, backend: str, size: int, regions: int, threads: int, timeout: float,
        checkpointing: bool | str = False, batch: int = 1, amp: bool = False) -> dict | None:
    """Time and peak memory of one step in a fresh process (None on timeout or failure)."""
    cmd = [sys.executable, __file__, "--child",
           json.dumps([mode, backend, size, regions, threads, checkpointing, batch, amp])]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def dense_mask_gb(size: int, heads: int = 8) -> float:
    """Memory of one layer's dense logits [heads, N, N] in float32 (N = (size/4)^2)."""
    n = (size // 4) ** 2
    return heads * n * n * 4 / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (train at 128x128, sweep to 256x256)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--regions", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_measure(*json.loads(args.child))))
        return

    train_size = 128 if args.quick else 256
    sizes = [128, 192, 256] if args.quick else [128, 256, 384, 512]
    print(f"torch {torch.__version__}, {args.threads} threads, default RAT (width 64, 12 layers), "
          f"{args.regions} Voronoi regions")
    print(f"\n## One training step (forward + backward + Adam), {train_size}x{train_size}, batch 1\n")
    print("| backend | activation checkpointing | time (s) | peak memory (MB) |")
    print("|---|---|---|---|")
    res = {(b, c): run("train", b, train_size, args.regions, args.threads, args.timeout, checkpointing=c)
           for c in (False, True) for b in ("sparse", "dense")}
    for (b, c), r in res.items():
        print(f"| {b} | {'yes' if c else 'no'} | {r['seconds']:.2f} | {r['peak_mb']:.0f} |" if r
              else f"| {b} | {'yes' if c else 'no'} | failed | - |")

    def ratio(a: tuple, b: tuple, label: str) -> None:
        if res[a] and res[b]:
            print(f"- {label}: time {res[b]['seconds'] / res[a]['seconds']:.1f}x, "
                  f"peak memory {res[b]['peak_mb'] / res[a]['peak_mb']:.1f}x less")

    print()
    ratio(("sparse", False), ("dense", False), "sparse vs dense, no checkpointing (like for like)")
    ratio(("sparse", True), ("dense", True), "sparse vs dense, both with checkpointing")
    ratio(("sparse", True), ("dense", False), "sparse + checkpointing vs dense as the reference trains")

    print("\n## Forward pass (inference), batch 1\n")
    print("| size | sparse time (s) | sparse peak (MB) | dense time (s) | dense peak (MB) | dense / sparse time |")
    print("|---|---|---|---|---|---|")
    table: dict[int, dict[str, dict | None]] = {}
    for size in sizes:
        fits = dense_mask_gb(size) * 3 < 20  # logits + softmax + mask must fit in 24 GB of RAM
        row = table[size] = {
            "sparse": run("forward", "sparse", size, args.regions, args.threads, args.timeout),
            "dense": run("forward", "dense", size, args.regions, args.threads, args.timeout) if fits else None,
        }
        cells = []
        for b in ("sparse", "dense"):
            r = row[b]
            if r is not None:
                cells += [f"{r['seconds']:.2f}", f"{r['peak_mb']:.0f}"]
            elif b == "dense" and not fits:
                cells += ["skipped", f"> {dense_mask_gb(size) * 3:.0f} GB (est.)"]
            else:
                cells += ["failed", "-"]
        both = row["sparse"] and row["dense"]
        ratio = f"{row['dense']['seconds'] / row['sparse']['seconds']:.1f}x" if both else "-"
        print(f"| {size}x{size} | " + " | ".join(cells) + f" | {ratio} |", flush=True)

    print("\nGrowth of forward time from the smallest size (pixels grow by (size/s0)^2):")
    for b in ("sparse", "dense"):
        done = [(s, r[b]["seconds"]) for s, r in table.items() if r[b]]
        if len(done) > 1:
            s0, t0 = done[0]
            steps = ", ".join(f"{s}: x{t / t0:.1f} (pixels x{(s / s0) ** 2:.0f})" for s, t in done[1:])
            print(f"- {b} from {s0}: {steps}")

if __name__ == "__main__":
    main()
