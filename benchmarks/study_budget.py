"""CPU seconds (one thread) per training iteration and per evaluated test image of the models
in configs/studies/ct_table4.yaml, to size a study's budget (a minute or two).

    ratmir prepare ct --out /tmp/ct --limit 6 --ct-noise-hu 12 --backend felzenszwalb   # as ct_table4.yaml
    OMP_NUM_THREADS=1 python benchmarks/study_budget.py /tmp/ct

Measures process CPU time with one torch thread, so a machine shared with other jobs still
gives usable numbers (upper bounds: caches and memory bandwidth are shared). With
``ratmir study --jobs 2`` on 2 cores, wall time is about half the summed CPU time.
"""

from __future__ import annotations

import argparse
import time

import torch

SMALL_RAT = {"width": 16, "middle_layers": 6, "layers_per_group": 3, "identity_init": True}
MODELS = {"rat": ("rat", SMALL_RAT), "wmsa": ("rat", {**SMALL_RAT, "attention": "window"}),
          "msa": ("rat", {**SMALL_RAT, "attention": "global"}), "redcnn": ("redcnn", {"features": 48}),
          "dncnn": ("dncnn", {"features": 32, "depth": 10})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a prepared CT dataset")
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from ratmir.data import PairedDataset
    from ratmir.engine.region_sources import RegionProvider
    from ratmir.losses import FocalRegionLoss
    from ratmir.models import build_model

    train = PairedDataset(args.data, "train", patch_size=args.patch, augment=True)
    test = PairedDataset(args.data, "test")
    items = [train[i] for i in range(args.batch)]
    lq, hq, regions = (torch.stack([b[k] for b in items]) for k in ("lq", "hq", "regions"))
    image = test[0]
    loss_fn = FocalRegionLoss(gamma=1e-3, delta=1.0)
    print(f"CPU seconds, 1 thread; patch {args.patch}, batch {args.batch}; test image {tuple(image['lq'].shape)}")
    for name, (arch, options) in MODELS.items():
        model = build_model(arch, in_channels=1, **options)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step() -> None:
            loss = loss_fn(model(lq, regions), hq, regions)
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()  # warm-up
        start = time.process_time()
        for _ in range(args.steps):
            step()
        per_step = (time.process_time() - start) / args.steps
        model.eval()
        with torch.no_grad():
            start = time.process_time()
            model(image["lq"][None], image["regions"][None])
            per_image = time.process_time() - start
        print(f"{name:>7}: {per_step:6.2f} s / train iteration   {per_image:6.2f} s / test image", flush=True)
    for source in ("felzenszwalb", "slic"):
        provider = RegionProvider(source, test)
        start = time.process_time()
        provider(0, image)
        print(f"regions {source}: {time.process_time() - start:.2f} s / test image")


if __name__ == "__main__":
    main()
