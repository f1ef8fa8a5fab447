"""Where the default RAT's time goes on CPU: one 512^2 forward pass, by op family.

Prints, measured side by side in one run:
  * the machine's matmul limit (2048^2 fp32 and bf16 GFLOPS),
  * the forward pass's FLOPs (``FlopCounterMode``), time and GFLOPS for each requested
    precision / layout variant, and their ratio to the bf16 matmul limit,
  * a profile by op family (convolutions, layer norms, attention, permutes/copies,
    gather/scatter, elementwise, planning) for the first variant.

    python benchmarks/profile_rat.py                    # default RAT, 512^2, 20 regions
    python benchmarks/profile_rat.py --size 256 --repeat 1
    python benchmarks/profile_rat.py --precision fp32 bf16 --no-profile

Label map: a Voronoi partition with ``--regions`` seeds (uneven, like real maps).
Stop other jobs first: the numbers are only meaningful on an idle machine.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import defaultdict

import torch
from torch.utils.flop_counter import FlopCounterMode

from ratmir.models import RAT
try:
    from ratmir.models.inference import inference_context
except ImportError:
    pass

FAMILIES = (
    ("convolution", r"conv|mkldnn_convolution|_convolution"),
    ("attention (sdpa)", r"scaled_dot_product|flash_attention|_efficient_attention|softmax|bmm|baddbmm"),
    ("matmul (linear)", r"addmm|^aten::mm$|linear|matmul"),
    ("layer norm", r"layer_norm|LayerNorm2d|rsqrt|aten::mean|var_mean"),
    ("gather / scatter", r"index_select|index|gather|scatter|masked|nonzero"),
    ("permute / copy", r"copy_|contiguous|clone|cat|stack|reshape|_unsafe_view|permute|transpose|pad|constant_pad|reflection_pad|to$|_to_copy"),
    ("planning", r"unique|sort|argsort|from_numpy|lexsort"),
    ("elementwise", r"add|mul|sub|gelu|div|sum|chunk|split|adaptive_avg_pool|pixel_shuffle"),
)


def voronoi_labels(size: int, regions: int, *, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    seeds = torch.rand(regions, 2, generator=g) * size
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pts = torch.stack([yy, xx], -1).reshape(-1, 1, 2).float()
    weight = 0.5 + torch.rand(regions, generator=g)  # uneven sizes
    d = ((pts - seeds) ** 2).sum(-1) * weight
    return d.argmin(-1).reshape(1, size, size)


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeat: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def family(name: str) -> str:
    short = name.split("::")[-1]
    for fam, pattern in FAMILIES:
        if re.search(pattern, name) or re.search(pattern, short):
            return fam
    return "other"


def time_forward(model: RAT, x: torch.Tensor, regions: torch.Tensor, *, precision: str, repeat: int) -> float:
    best = float("inf")
    with inference_context(model, precision=precision) as run:
        run(x, regions)  # warm-up (plans, kernels, weight casts)
        for _ in range(repeat):
            t = time.perf_counter()
            run(x, regions)
            best = min(best, time.perf_counter() - t)
    return best


def profile_families(model: RAT, x: torch.Tensor, regions: torch.Tensor, *, precision: str) -> None:
    with inference_context(model, precision=precision) as run:
        run(x, regions)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            run(x, regions)
    totals: dict[str, float] = defaultdict(float)
    top: dict[str, float] = defaultdict(float)
    for evt in prof.key_averages():
        # self time only, so nested ops are not counted twice
        totals[family(evt.key)] += evt.self_cpu_time_total / 1e6
        top[evt.key] += evt.self_cpu_time_total / 1e6
    whole = sum(totals.values())
    print(f"\nprofile ({precision}): {whole:.2f} s of op self-time")
    print("| op family | s | share |\n|---|---|---|")
    for fam, secs in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {fam} | {secs:.2f} | {secs / whole:.0%} |")
    print("\ntop ops:")
    for key, secs in sorted(top.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {secs:7.3f} s  {key}  [{family(key)}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = RAT().eval()
    for p in model.parameters():  # non-zero layer scales, so every branch does real work
        if p.dim() == 4 and p.shape[0] == 1:
            torch.nn.init.normal_(p, std=0.1)
    x = torch.rand(1, 1, args.size, args.size)
    regions = voronoi_labels(args.size, args.regions)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size}^2, {args.regions} regions")
    limits = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"matmul 2048^2: fp32 {limits['fp32']:.0f} GFLOPS, bf16 {limits['bf16']:.0f} GFLOPS")
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x, regions)
    gflop = counter.get_total_flops() / 1e9
    print(f"forward: {gflop:.0f} GFLOP; bf16 matmul limit {gflop / limits['bf16']:.2f} s, "
          f"fp32 limit {gflop / limits['fp32']:.2f} s")
    print("| precision | s | GFLOPS | x bf16 limit |\n|---|---|---|---|")
    for precision in args.precision:
        secs = time_forward(model, x, regions, precision=precision, repeat=args.repeat)
        print(f"| {precision} | {secs:.2f} | {gflop / secs:.0f} | {secs / (gflop / limits['bf16']):.1f} |")
    if not args.no_profile:
        profile_families(model, x, regions, precision=args.precision[0])


if __name__ == "__main__":
    main()
