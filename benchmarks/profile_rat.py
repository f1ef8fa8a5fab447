"""Where the default RAT's time goes on CPU: one 512^2 forward pass, by op family.

Prints, measured side by side in one run:
  * the machine's matmul limit (2048^2 fp32 and bf16 GFLOPS),
  * the forward pass's FLOPs (``FlopCounterMode``), time and GFLOPS for each requested
    precision / layout variant, and their ratio to the bf16 matmul limit,
  * a profile by op family (convolutions, layer norms, attention, permutes/copies,
    gather/scatter, elementwise, planning) for the first variant,
  * the floor for this exact model on this machine: the region attention of all layers on its
    fastest CPU kernel (SDPA flash in float32 and in bf16, timed on the same segments) plus the
    convolutions and linear layers at the bf16 matmul limit.

    python benchmarks/profile_rat.py                    # default RAT, 512^2, 20 regions
    python benchmarks/profile_rat.py --size 256 --repeat 1
    python benchmarks/profile_rat.py --precision fp32 bf16 --no-profile

Label map: a Voronoi partition with ``--regions`` cells (benchmarks/attention.py).
Stop other jobs first: the numbers are only meaningful on an idle machine.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import defaultdict

import torch
from torch.utils.flop_counter import FlopCounterMode

from attention import voronoi_regions  # benchmarks/attention.py

from ratmir.models import RAT
from ratmir.models.grouped_attention import _chunk_attention
from ratmir.models.precision import inference_precision

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
    with torch.inference_mode(), inference_precision(precision, "cpu"):
        model(x, regions)  # warm-up (plans, kernels)
        for _ in range(repeat):
            t = time.perf_counter()
            model(x, regions)
            best = min(best, time.perf_counter() - t)
    return best


def profile_families(model: RAT, x: torch.Tensor, regions: torch.Tensor, *, precision: str) -> None:
    with torch.inference_mode(), inference_precision(precision, "cpu"):
        model(x, regions)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model(x, regions)
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


def attention_gflop(model: RAT, regions: torch.Tensor) -> float:
    """GFLOP of one forward pass's attention (region + window, all middle layers), which
    ``FlopCounterMode`` does not count for CPU flash attention: QK^T and AV are 4 * n^2 * C per
    segment of n tokens; a W-MSA window holds window_size^2 tokens."""
    sampled = regions[:, :: model.stride, :: model.stride]  # the latent label map
    _, sizes = sampled.unique(return_counts=True)
    window = model.config["window_size"] ** 2
    pairs = (sizes.double() ** 2).sum().item() + sampled.numel() * window  # sum of n^2, both kinds
    latent = model.config["width"] * model.stride
    return 4 * latent * pairs * model.config["middle_layers"] / 1e9


def attention_seconds(model: RAT, x: torch.Tensor, regions: torch.Tensor, *, dtype: torch.dtype,
                      repeat: int) -> float:
    """Region attention of all middle layers (the SDPA calls on every segment, nothing around
    them), with the kernel computing in ``dtype``."""
    pad = (-x.shape[-1]) % model.size_multiple
    groups = model._groups(regions, 1, x.shape[-2], x.shape[-1], pad, pad)
    latent = model.config["width"] * model.stride
    heads = model.config["num_heads"]
    qkv = torch.randn(groups.num_tokens, 3, heads, latent // heads, dtype=dtype)
    parts = torch.split(qkv.index_select(0, groups.perm), [c.num_tokens for c in groups.chunks])
    scale = heads**-0.5
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeat + 1):  # the first is a warm-up
            t = time.perf_counter()
            for chunk, part in zip(groups.chunks, parts):
                _chunk_attention(part, chunk, scale=scale)
            best = min(best, time.perf_counter() - t)
    return best * model.config["middle_layers"]


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
    regions = voronoi_regions(args.size, args.regions)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size}^2, {args.regions} regions")
    limits = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"matmul 2048^2: fp32 {limits['fp32']:.0f} GFLOPS, bf16 {limits['bf16']:.0f} GFLOPS")
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x, regions)
    # FlopCounterMode counts convolutions and linear layers but not CPU flash attention:
    # attention is 4 * sum(segment size^2) * channels per layer (QK^T and AV), from the plan.
    counted = counter.get_total_flops() / 1e9
    attention = attention_gflop(model, regions)
    gflop = counted + attention
    print(f"forward: {gflop:.0f} GFLOP ({counted:.0f} conv/linear + {attention:.0f} attention); "
          f"bf16 matmul limit {gflop / limits['bf16']:.2f} s, fp32 limit {gflop / limits['fp32']:.2f} s")
    print("| precision | s | GFLOPS | x bf16 limit |\n|---|---|---|---|")
    for precision in args.precision:
        secs = time_forward(model, x, regions, precision=precision, repeat=args.repeat)
        print(f"| {precision} | {secs:.2f} | {gflop / secs:.0f} | {secs / (gflop / limits['bf16']):.1f} |")
    attn = {name: attention_seconds(model, x, regions, dtype=dt, repeat=args.repeat)
            for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    best = min(attn.values())
    matmul = counted / limits["bf16"]
    print(f"\nregion attention, {model.config['middle_layers']} layers, SDPA flash alone: "
          f"fp32 {attn['fp32']:.2f} s, bf16 {attn['bf16']:.2f} s")
    print(f"floor here for this exact model: best attention {best:.2f} s + conv/linear at the bf16 "
          f"matmul limit {matmul:.2f} s = {best + matmul:.2f} s (no time left for norms, gates, copies)")
    if not args.no_profile:
        profile_families(model, x, regions, precision=args.precision[0])


if __name__ == "__main__":
    main()
