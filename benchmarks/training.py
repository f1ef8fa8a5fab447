"""Training speed on this machine: the smoke run, and one iteration of the default model.

    python benchmarks/training.py          # smoke run (40 iterations) + default RAT at 256x256
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    from ratmir_testdata import write_tiny_dataset

    from ratmir.engine import load_config, train
    from ratmir.losses import FocalRegionLoss
    from ratmir.models import RAT

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_tiny_dataset(Path(tmp) / "data", size=64)
        cfg = load_config(ROOT / "configs" / "smoke.yaml", overrides=[f"data.root={data}"])
        start = time.perf_counter()
        train(cfg, out=Path(tmp) / "run", progress=False)
        print(f"smoke run (configs/smoke.yaml, 40 iterations, 4 checkpoints, 2 validations): "
              f"{time.perf_counter() - start:.1f} s")

    torch.manual_seed(0)
    model = RAT()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    loss_fn = FocalRegionLoss()
    for batch in (1, 2):
        x, t = torch.rand(batch, 1, 256, 256), torch.rand(batch, 1, 256, 256)
        yy, xx = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
        regions = ((yy // 64) * 4 + xx // 48).expand(batch, -1, -1)  # 20 regions
        times = []
        for _ in range(2):  # the first includes warm-up
            start = time.perf_counter()
            opt.zero_grad()
            loss_fn(model(x, regions), t, regions).backward()
            opt.step()
            times.append(time.perf_counter() - start)
        print(f"default RAT, one training iteration at 256x256, batch {batch}: {times[-1]:.1f} s")


if __name__ == "__main__":
    main()
