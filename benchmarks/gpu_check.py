"""One-command check of ratmir on a CUDA GPU; prints one table. Sized for < 8 minutes on one H100
(not yet run on one).

    python benchmarks/gpu_check.py                    # everything
    python benchmarks/gpu_check.py --only train,infer  # some sections (a rerun)

Rows:
1. equality of the grouped-attention backends (flex, varlen, sparse) with the dense reference
   mask, forward and backward (q, k, v gradients), float32 and bf16, at the default RAT's
   shapes (head dimension 32) and the demo's (8, where flex falls back to sparse); and a
   whole-RAT forward + backward, auto vs dense;
2. the paper's training step (default RAT, batch 8 of 256x256, focal region loss, Adam): time
   and peak GPU memory per backend, float32 and bf16 autocast (dense where it fits);
3. inference time of one 512x512 image (auto backend, float32 and bf16);
4. medsam regions per image on the GPU (when ratmir has that backend and its weights);
5. a 1-GPU ``torchrun`` training run (nccl process group, DDP, sharded validation).

Without CUDA it says so and exits 0. Exit status 1 when an equality check or the torchrun run
fails (a training row that errors counts too). ``--cpu-smoke`` runs the same code on the CPU at tiny sizes (to test this script
without a GPU; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # ratmir_testdata: the tiny dataset builder
from attention import voronoi_regions  # noqa: E402  (benchmarks/ is the script's folder)

# --cpu-smoke shrinks them
SIZES = {"side": 256, "batch": 8, "latent": 62, "infer": 512, "model": 128, "warmup": 2, "steps": 5}
ROWS: list[tuple[str, str, str, str]] = []  # (section, case, result, detail)
FAILED: list[str] = []


def row(section: str, case: str, result: str, detail: str = "", *, ok: bool = True) -> None:
    ROWS.append((section, case, result, detail))
    if not ok:
        FAILED.append(f"{section} / {case}")
    print(f"  {section:<10} {case:<34} {result:<22} {detail}", flush=True)


def guarded(section: str):
    """Run a section; an exception becomes a failed row instead of ending the check."""
    def wrap(fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - reported in the table
                traceback.print_exc()
                row(section, "(section)", "ERROR", f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}", ok=False)
            print(f"  [{section}: {time.perf_counter() - start:.0f} s]", flush=True)
        return run
    return wrap


def _labels(batch: int, side: int, regions: int) -> torch.Tensor:
    return torch.cat([voronoi_regions(side, regions, seed=s) for s in range(batch)]).reshape(batch, side * side)


@guarded("equality")
def check_equality(device: torch.device) -> None:
    from ratmir.models.fused_attention import unsupported_reason
    from ratmir.models.grouped_attention import grouped_attention, plan_groups

    # about the default RAT's latent grid at 256x256 (64²); 62² tokens is not a multiple of flex's block
    b, h, n_side = 2, 8, SIZES["latent"]
    groups = plan_groups(_labels(b, n_side, 40).to(device))
    for head_dim in (32, 8):
        g = torch.Generator(device=device).manual_seed(head_dim)
        base = [torch.randn(b, h, n_side * n_side, head_dim, device=device, generator=g) for _ in range(3)]
        grad_out = torch.randn(b, h, n_side * n_side, head_dim, device=device, generator=g)
        for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 3e-2)):
            inputs = [t.to(dtype) for t in base]  # the reference sees the same (rounded) values
            ref_in = [t.float().requires_grad_() for t in inputs]
            ref = grouped_attention(*ref_in, groups, scale=h**-0.5, backend="dense")
            ref_grads = torch.autograd.grad(ref, ref_in, grad_out)
            for backend in ("sparse", "flex", "varlen"):
                if backend == "varlen" and dtype == torch.float32:
                    continue
                x = [t.clone().requires_grad_() for t in inputs]
                dt = "fp32" if dtype == torch.float32 else "bf16"
                try:
                    out = grouped_attention(*x, groups, scale=h**-0.5, backend=backend)
                    grads = torch.autograd.grad(out, x, grad_out.to(dtype))
                except Exception as exc:  # noqa: BLE001 - report it, go on with the others
                    traceback.print_exc()
                    row("equality", f"{backend} vs dense d={head_dim} {dt}", "ERROR",
                        f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}", ok=False)
                    continue
                fell_back = backend != "sparse" and unsupported_reason(
                    backend, device=device, dtype=dtype, head_dim=head_dim, needs_grad=True) is not None
                errs = [_rel_err(out, ref)] + [_rel_err(a, r) for a, r in zip(grads, ref_grads)]
                worst = max(errs)
                note = " [fell back to sparse]" if fell_back else ""
                row("equality", f"{backend} vs dense d={head_dim} {dt}", "ok" if worst < tol else "MISMATCH",
                    f"max rel err fwd {errs[0]:.1e}, grads {max(errs[1:]):.1e} (tol {tol:g}){note}", ok=worst < tol)
    _check_model_equality(device)


def _rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.detach().float(), ref.detach().float()
    return float((a - ref).abs().max() / ref.abs().max().clamp_min(1e-12))


def _check_model_equality(device: torch.device) -> None:
    from ratmir.models import RAT

    torch.manual_seed(0)
    small = dict(width=16, middle_layers=3, layers_per_group=3)  # latent 64 channels, head dim 8
    for options, name in ((dict(width=32), "RAT width 32 (d=16)"), (small, "RAT width 16 (d=8)")):
        models = {be: RAT(attention_backend=be, **{**dict(middle_layers=3, layers_per_group=3), **options}).to(device)
                  for be in ("auto", "dense")}
        with torch.no_grad():
            for p in models["auto"].parameters():
                p.add_(0.05 * torch.randn_like(p))
        models["dense"].load_state_dict(models["auto"].state_dict())
        side = SIZES["model"]
        x = torch.rand(2, 1, side, side, device=device)
        r = torch.cat([voronoi_regions(side, 30, seed=s) for s in range(2)]).to(device)
        grads = {}
        for be, model in models.items():
            out = model(x, r)
            out.square().mean().backward()
            grads[be] = (out.detach(), [p.grad for p in model.parameters()])
        errs = [_rel_err(grads["auto"][0], grads["dense"][0])]
        errs += [_rel_err(a, d) for a, d in zip(grads["auto"][1], grads["dense"][1]) if d.abs().max() > 0]
        ok = max(errs) < 1e-3
        row("equality", f"{name}: auto vs dense fp32", "ok" if ok else "MISMATCH",
            f"max rel err out {errs[0]:.1e}, grads {max(errs[1:]):.1e} (tol 1e-3)", ok=ok)


def _compiled_graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_steps(step, device: torch.device, *, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds per step, peak GB allocated over all steps; 0 off CUDA)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return (time.perf_counter() - start) / steps, peak


@guarded("train")
def check_training(device: torch.device) -> None:
    from ratmir.losses import FocalRegionLoss
    from ratmir.models import RAT

    side, batch = SIZES["side"], SIZES["batch"]
    x = torch.rand(batch, 1, side, side, device=device)
    target = torch.rand_like(x)
    regions = torch.cat([voronoi_regions(side, 40, seed=s) for s in range(batch)]).to(device)
    loss_fn = FocalRegionLoss()
    cases = [("fp32", "sparse"), ("fp32", "flex"), ("fp32", "dense"), ("bf16", "sparse"), ("bf16", "varlen"),
             ("bf16", "flex"), ("bf16", "dense")]
    for amp, backend in cases:
        torch.manual_seed(0)
        model = RAT(attention_backend=backend).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=2e-4)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
                pred = model(x, regions)
            loss_fn(pred.float(), target, regions).backward()
            opt.step()

        graphs = _compiled_graphs()
        try:
            seconds, peak = _timed_steps(step, device, warmup=SIZES["warmup"], steps=SIZES["steps"])
            compiled = _compiled_graphs() - graphs  # flex: more than a few would mean a recompile per step
            row("train", f"{side}² batch {batch}, {backend} {amp}", f"{seconds * 1000:.0f} ms/step",
                f"peak {peak:.1f} GB" + (f", {compiled} graphs compiled" if compiled else ""))
        except torch.OutOfMemoryError:
            row("train", f"{side}² batch {batch}, {backend} {amp}", "out of memory", "does not fit")
        except Exception as exc:  # noqa: BLE001 - e.g. a compile error: report it, go on with the others
            traceback.print_exc()
            row("train", f"{side}² batch {batch}, {backend} {amp}", "ERROR",
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}", ok=False)
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()


@guarded("infer")
def check_inference(device: torch.device) -> None:
    from ratmir.models import RAT

    torch.manual_seed(0)
    model = RAT().to(device).eval()
    side = SIZES["infer"]
    x = torch.rand(1, 1, side, side, device=device)
    regions = voronoi_regions(side, 40).to(device)
    for amp in ("fp32", "bf16"):
        def step() -> None:
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
                model(x, regions)

        seconds, peak = _timed_steps(step, device, warmup=SIZES["warmup"], steps=SIZES["steps"])
        row("infer", f"{side}² batch 1, auto {amp}", f"{seconds * 1000:.0f} ms/image", f"peak {peak:.2f} GB")


@guarded("regions")
def check_medsam(device: torch.device) -> None:
    import numpy as np

    from ratmir.regions import build_backend

    try:
        backend = build_backend("medsam", device=str(device))
    except Exception as exc:  # noqa: BLE001 - no such backend, no weights, ...
        row("regions", "medsam per 512² image", "not available", f"{type(exc).__name__}: {str(exc)[:80]}")
        return
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:512, :512] / 512
    images = [np.clip(0.5 + 0.3 * np.sin(2 * np.pi * (i + 2) * xx) * np.cos(2 * np.pi * 3 * yy)
                      + 0.05 * rng.standard_normal((512, 512)), 0, 1).astype(np.float32) for i in range(4)]
    backend.segment(images[0])  # load and warm up
    _sync(device)
    start = time.perf_counter()
    counts = [int(np.unique(backend.segment(im)).size) for im in images[1:]]
    _sync(device)
    row("regions", "medsam per 512² image", f"{(time.perf_counter() - start) / 3:.2f} s/image",
        f"{counts} regions")


@guarded("torchrun")
def check_torchrun(device: torch.device) -> None:
    from ratmir_testdata import write_tiny_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = write_tiny_dataset(Path(tmp) / "data", size=64, train=8, test=3)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", f"--master_port={port}",
               "-m", "ratmir", "train", str(ROOT / "configs" / "smoke.yaml"), "--out", str(Path(tmp) / "run"),
               "--set", f"data.root={data}", "--set", "train.iterations=20", "--set", "train.val_every=10",
               "--set", "train.checkpoint_every=10", "--set", f"train.device={device.type}",
               "--set", "train.amp=bf16", "--no-progress"]
        env = {**os.environ, "NCCL_DEBUG": "INFO", "PYTHONPATH": str(ROOT / "src")}
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
        seconds = time.perf_counter() - start
        log = done.stdout + done.stderr
        finished = done.returncode == 0 and (Path(tmp) / "run" / "model.safetensors").is_file()
        nccl = "NCCL INFO" in log or device.type != "cuda"  # gloo on the CPU
        if not finished:
            print(log[-3000:])
        row("torchrun", f"1 {device.type.upper()} process, 20 iterations", "ok" if finished and nccl else "FAILED",
            f"{seconds:.0f} s incl. start-up; nccl {'seen' if 'NCCL INFO' in log else 'NOT seen'} in the log",
            ok=finished and nccl)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="run on the CPU at tiny sizes (tests this script)")
    parser.add_argument("--only", default="equality,train,infer,regions,torchrun",
                        help="comma-separated sections to run (default: all)")
    args = parser.parse_args(argv)
    sections = {"equality": check_equality, "train": check_training, "infer": check_inference,
                "regions": check_medsam, "torchrun": check_torchrun}
    chosen = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(sections))
    if unknown:
        parser.error(f"--only: unknown section(s) {unknown}; choose from {sorted(sections)}")
    if args.cpu_smoke:
        SIZES.update(side=32, batch=2, latent=8, infer=64, model=32, warmup=1, steps=1)
        device, name = torch.device("cpu"), "CPU (--cpu-smoke: tiny sizes, numbers mean nothing)"
    elif not torch.cuda.is_available():
        print("gpu_check needs CUDA: no GPU is visible to torch here, so nothing was checked.")
        return 0
    else:
        device = torch.device("cuda", 0)
        name = torch.cuda.get_device_name(device)
    print(f"ratmir GPU check on {name}, torch {torch.__version__}", flush=True)
    start = time.perf_counter()
    for section in chosen:
        sections[section](device)
    print(f"\nratmir GPU check: {name}, torch {torch.__version__}, {time.perf_counter() - start:.0f} s")
    widths = [max(len(r[i]) for r in ROWS + [("section", "case", "result", "detail")]) for i in range(4)]
    for r in [("section", "case", "result", "detail"), tuple("-" * w for w in widths), *ROWS]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if FAILED:
        print(f"\nFAILED: {', '.join(FAILED)}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
