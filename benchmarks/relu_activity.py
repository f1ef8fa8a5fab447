"""Are a trained CNN's ReLUs alive? The share of active units after each ReLU, on test images.

A network whose ReLUs have died passes (almost) nothing to the layers after them: no gradient
flows back through a ReLU that is off, so those units cannot come back. For each trained run
this hooks every ``nn.ReLU`` (a module applied several times, as RED-CNN's one ``relu``, is
reported per call, in call order), runs the full test images of DATA through the model, and
prints per call the fraction of activations above zero and the fraction of channels that are
zero on every pixel of every image; beside it the same for the untrained network (the run's
architecture and options, freshly initialised with the run's seed), so what training did shows
side by side. No training: one forward pass per image.

    python benchmarks/relu_activity.py studies/ct_redcnn_idinit_probe/runs/*/seed*/ \\
        studies/ct_redcnn_probe/runs/*/seed*/ --data studies/ct_redcnn_probe/datasets/ct --max-images 4

Writes ``benchmarks/results/relu_activity/LABEL.json`` with ``--label LABEL`` (committed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from ratmir._files import write_text_atomic
from ratmir.data import PairedDataset
from ratmir.data.splits import evenly_spaced
from ratmir.models import load_pretrained
from ratmir.models.registry import build_model

RESULTS = Path(__file__).resolve().parent / "results" / "relu_activity"


def relu_activity(model: nn.Module, images: list[torch.Tensor]) -> list[dict[str, float]]:
    """Per ReLU call (in order): ``active`` (share of activations > 0) and ``dead_channels`` (share of
    channels that are 0 everywhere in every image), for ``images`` ([C, H, W] each)."""
    calls: list[list[torch.Tensor]] = []  # per call: per image, [channels] (active count, max)
    position = [0]

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        k = position[0]
        position[0] += 1
        if k == len(calls):
            calls.append([])
        on = (output > 0).flatten(2).float()  # [1, C, H*W]
        calls[k].append(torch.stack([on.sum(-1)[0], on.amax(-1)[0], torch.full_like(on[0, :, 0], on.shape[-1])]))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    if not handles:
        raise ValueError(f"{type(model).__name__} has no nn.ReLU to measure")
    try:
        with torch.no_grad():
            for image in images:
                position[0] = 0
                model(image[None])
    finally:
        for h in handles:
            h.remove()
    rows = []
    for per_image in calls:
        stats = torch.stack(per_image)  # [images, 3, C]
        active = stats[:, 0].sum() / stats[:, 2].sum()
        dead = (stats[:, 1].amax(0) == 0).float().mean()
        rows.append({"active": float(active), "dead_channels": float(dead)})
    return rows


def _seed(run: Path) -> int:
    """The run's ``train.seed`` from its config.yaml, 0 when there is none."""
    import yaml

    config = (run if run.is_dir() else run.parent) / "config.yaml"
    if not config.is_file():
        return 0
    return int((yaml.safe_load(config.read_text()) or {}).get("train", {}).get("seed", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (with model.safetensors) or weight files")
    parser.add_argument("--data", type=Path, required=True, help="a dataset made by `ratmir prepare`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-images", type=int, default=4, help="evenly spaced images of the split")
    parser.add_argument("--label", default=None, help="save benchmarks/results/relu_activity/LABEL.json")
    args = parser.parse_args()
    if args.max_images < 1:
        parser.error(f"--max-images must be >= 1, got {args.max_images}")
    dataset = PairedDataset(args.data, args.split)
    picks = evenly_spaced(range(len(dataset)), limit=args.max_images)  # as `ratmir evaluate --max-images`
    images = [dataset[i]["lq"] for i in picks]
    results = {}
    for run in args.runs:
        weights = run / "model.safetensors" if run.is_dir() else run
        if not weights.is_file():
            raise SystemExit(f"Error: no weights at {weights}")
        model = load_pretrained(weights).eval()
        seed = _seed(run)
        torch.manual_seed(seed)
        fresh = build_model(model.architecture, **model.config).eval()
        rows, untrained = relu_activity(model, images), relu_activity(fresh, images)
        results[str(run)] = {"trained": rows, "untrained": untrained, "untrained_seed": seed}
        print(f"{run}:")
        for name, r in (("trained", rows), (f"untrained (seed {seed})", untrained)):
            print(f"  {name:20s} active per ReLU call " + " ".join(f"{x['active']:.3f}" for x in r))
            print(f"  {'':20s} dead channels        " + " ".join(f"{x['dead_channels']:.2f}" for x in r))
    if args.label:
        out = RESULTS / f"{args.label}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, json.dumps({"data": str(args.data), "split": args.split,
                                           "images": [dataset.names[i] for i in picks], "runs": results}, indent=1))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
