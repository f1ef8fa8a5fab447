"""Peak memory of restoring a large RGB image with tiling (issue: 3000x3000 under 4 GB).

Writes a 3000x3000 RGB TIFF and the default RAT (in_channels=3, random weights: memory and time
do not depend on the weights), then runs what `ratmir restore` does (``restore_files``) alone in
a fresh process and prints its peak resident memory (VmHWM) and time, for tiled and (with
--untiled) one-pass restoration.

    python benchmarks/restore_memory.py              # 3000x3000, tile 512 (a few minutes)
    python benchmarks/restore_memory.py --size 1024  # quicker
    python benchmarks/restore_memory.py --quick 2    # the same peak from the first 2x2 tiles
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM")


def prepare(folder: Path, size: int) -> Path:
    """Random RAT weights (in_channels 3; memory and time do not depend on the weights) and a
    size x size RGB TIFF in ``folder``, written by this (parent) process; returns the weights."""
    import numpy as np
    import torch

    from ratmir.io import write_tiff
    from ratmir.models import RAT, save_pretrained
    from ratmir.tasks import get_task

    torch.manual_seed(0)
    meta = {"task": "pathology", "normalisation": json.dumps(get_task("pathology").normalisation.record())}
    weights = save_pretrained(RAT(in_channels=3), folder / "rat.safetensors", metadata=meta)
    write_tiff(folder / "in" / "big.tiff", np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))
    return weights


def child(folder: str, tile: int, precision: str, quick: int) -> dict:
    """What `ratmir restore` does, alone in a fresh process; returns its time and peak."""
    if quick:  # only the first N x N tiles (every full-size buffer is still allocated)
        import ratmir.restore.tiling as tiling

        starts = tiling.tile_starts
        tiling.tile_starts = lambda n, t, o: starts(n, t, o)[:quick]
    from ratmir.restore import RestoreConfig, restore_files

    folder = Path(folder)
    start = time.perf_counter()
    report = restore_files(RestoreConfig(inputs=(folder / "in",), model=folder / "rat.safetensors",
                                         out=folder / f"out-{tile}-{precision}", tile=tile or None, batch_size=1,
                                         progress=False, regions="felzenszwalb",  # as README quotes (default: auto)
                                         precision=precision))
    seconds = time.perf_counter() - start
    assert report.ok or quick, report.failures
    return {"seconds": seconds, "peak_mb": _peak_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=3000)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--untiled", action="store_true", help="also measure one-pass restoration")
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    ap.add_argument("--quick", type=int, default=0, metavar="N",
                    help="quick peak check: restore only the first N x N tiles (the output is not "
                         "usable, the time is not the full time; the peak is the full run's: every full-size "
                         "buffer is allocated and one tile is in the model at a time)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    print(f"Restoring a {args.size}x{args.size} RGB TIFF with the default RAT (in_channels=3), CPU\n")
    print("| mode | precision | time (s) | peak resident memory (MB) |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), args.size)
        for tile in [args.tile] + ([0] if args.untiled else []):
            mode = ("untiled" if not tile else f"tiled {tile}, overlap 32") + (f", first {args.quick}x{args.quick} tiles"
                                                                               if args.quick and tile else "")
            for precision in args.precision:
                out = subprocess.run([sys.executable, __file__, "--child", json.dumps([tmp, tile, precision, args.quick])],
                                     capture_output=True, text=True)
                if out.returncode:
                    print(f"| {mode} | {precision} | failed | {out.stderr.strip().splitlines()[-1]} |", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"| {mode} | {precision} | {r['seconds']:.1f} | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
