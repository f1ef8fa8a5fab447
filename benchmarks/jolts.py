"""Did a run's training loss rise above the identity's after it started? The peak per unit.

Reads ``loss_vs_identity`` (the training loss over the loss of returning the input, same batch)
from each ``metrics.jsonl`` of a study's runs and prints, per experiment and seed, the peak after
iteration ``--after`` (the warm-up's first steps sit at 1.00x) and where it was. A peak above
1.05x is what docs/results.md calls a jolt.

    python benchmarks/jolts.py studies/ct_table4_750 --label ct_table4_750

Writes ``benchmarks/results/jolts/LABEL.json`` with ``--label LABEL`` (committed: ``runs/`` is not).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ratmir._files import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "jolts"


def peak(metrics: Path, *, after: int) -> tuple[float, int]:
    """(largest ``loss_vs_identity``, its iteration) over the lines of ``metrics`` past ``after``."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    points = [(r["loss_vs_identity"], r["iteration"]) for r in rows
              if "loss_vs_identity" in r and r["iteration"] > after]
    if not points:
        raise ValueError(f"{metrics}: no loss_vs_identity after iteration {after}")
    return max(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="a study folder (with runs/<experiment>/seed<k>/metrics.jsonl)")
    parser.add_argument("--after", type=int, default=20, help="ignore iterations up to this one")
    parser.add_argument("--label", default=None, help="save benchmarks/results/jolts/LABEL.json")
    args = parser.parse_args()
    found = sorted((args.study / "runs").glob("*/seed*/metrics.jsonl"))
    if not found:
        raise SystemExit(f"Error: no runs/*/seed*/metrics.jsonl under {args.study}")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for metrics in found:
        value, at = peak(metrics, after=args.after)
        results.setdefault(metrics.parent.parent.name, {})[metrics.parent.name] = {"peak": value, "iteration": at}
    for experiment, seeds in results.items():
        print(f"{experiment:14s} " + " | ".join(f"{s} {r['peak']:.2f}x @{r['iteration']}" for s, r in seeds.items()))
    if args.label:
        out = RESULTS / f"{args.label}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, json.dumps({"study": str(args.study), "after": args.after, "peaks": results}, indent=1))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
