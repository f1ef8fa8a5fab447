"""Has a training run left its start? Loss against the identity, and one warning when it has not.

A restoration network predicts ``input + residual``; a network that still returns its input
(the identity) scores exactly the input's PSNR. :class:`TakeoffMonitor` keeps the training loss
next to the loss the identity would have on the same batch (``loss_fn(lq, hq)``, no model pass)
and, at a quarter of the run (:func:`check_point`: later where a warm-up delays the take-off),
prints one warning line when the training loss is not at least 0.1 dB under the identity's (for
an L1 loss the PSNR gain is about ``-20 log10(loss / identity)``):
a run near the identity, or one that swings far above it (Adam with beta1 0.5 on a zero output
layer: spikes of 20-35 dB above the identity's loss, measured), has not learned yet.
The ratio and the layer-scale sizes (:func:`ratmir.models.layer_scales.layer_scale_sizes`) go to
``metrics.jsonl`` and TensorBoard with every log line.

>>> m = TakeoffMonitor(iterations=8, window=2)
>>> for _ in range(2):
...     m.add(loss=0.5, identity=1.0)
>>> round(m.gain_db(), 2)
6.02
"""

from __future__ import annotations

import inspect
import math
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import ExperimentConfig

STALL_DB = 0.1  # a run not this many dB better than the identity at a quarter of its length has not learned
TAKEOFF_AFTER_WARMUP = 100  # iterations a warmed-up run takes to leave the identity once at full lr (measured)


def check_point(*, iterations: int, warmup: int = 0) -> int:
    """The iteration of the stall check: a quarter of the run, and with a warm-up of ``warmup``
    iterations not before ``2 * warmup + TAKEOFF_AFTER_WARMUP`` (nor after the run's end).

    Measured (benchmarks/recipes.py, 600 iterations, 60 of warm-up, 5 seeds each of RAT and W-MSA):
    the training loss over the identity's is 0.97-1.02 at 100 iterations and 0.73-0.98 at 175
    (every run past the 0.1 dB mark by then; all end +4.6 to +7.0 dB over the input). In the CT
    Table 4 study a check at the quarter (150) warned on a RAT at -0.78 dB that was +2.3 dB over
    the input in validation by 300. Runs without warm-up keep the quarter.

    >>> [check_point(iterations=600), check_point(iterations=600, warmup=60),
    ...  check_point(iterations=100, warmup=60)]
    [150, 220, 100]
    """
    quarter = max(1, math.ceil(iterations / 4))
    if warmup <= 0:
        return quarter
    return max(quarter, min(iterations, 2 * warmup + TAKEOFF_AFTER_WARMUP))


def gain_db(*, loss: float, identity: float) -> float:
    """-20 log10(loss / identity): the PSNR gain an L1 loss ratio stands for (inf if loss is 0)."""
    if identity <= 0:
        return 0.0
    return math.inf if loss <= 0 else -20.0 * math.log10(loss / identity)


class TakeoffMonitor:
    """Training loss vs the identity's loss on the same batches: their sums since the previous
    log line (:meth:`log_record`), and the gain over the last ``window`` iterations
    (:meth:`gain_db`) for the check at ``check_at`` (:func:`check_point`, :meth:`stalled`)."""

    def __init__(self, *, iterations: int, warmup: int = 0, window: int = 50) -> None:
        self.check_at = check_point(iterations=iterations, warmup=warmup)
        self.recent: deque[tuple[float, float]] = deque(maxlen=max(1, min(window, self.check_at)))
        self.log_sums = [0.0, 0.0, 0]  # loss, identity loss, iterations since the previous log line

    def add(self, *, loss: float, identity: float) -> None:
        self.recent.append((loss, identity))
        self.log_sums[0] += loss
        self.log_sums[1] += identity
        self.log_sums[2] += 1

    def gain_db(self) -> float:
        """Gain over the identity over the last ``window`` iterations."""
        loss, identity = (sum(v) for v in zip(*self.recent)) if self.recent else (0.0, 0.0)
        return gain_db(loss=loss, identity=identity)

    def log_record(self) -> dict[str, float]:
        """The identity's mean loss per iteration (``identity_loss``) and the training loss over it
        (``loss_vs_identity``, a ratio of sums) since the previous call, then reset."""
        loss, identity, count = self.log_sums
        self.log_sums = [0.0, 0.0, 0]
        if identity <= 0:
            return {}
        return {"identity_loss": identity / count, "loss_vs_identity": loss / identity}

    def stalled(self, iteration: int) -> bool:
        """True at ``check_at`` (so once in a run that calls it every iteration) when the recent
        training loss is not at least STALL_DB under the identity's (near it, or above it)."""
        return iteration == self.check_at and self.gain_db() < STALL_DB


def _has_identity_init(name: str) -> bool:
    from ..models import MODELS

    return name in MODELS and "identity_init" in inspect.signature(MODELS[name]).parameters


def stall_warning(*, iteration: int, iterations: int, gain: float, config: ExperimentConfig) -> str:
    """One line naming the likely causes of a run that has not left the identity."""
    o, options = config.optim, config.model.options
    causes = []
    if o.betas[0] < 0.9:
        causes.append(f"Adam beta1 {o.betas[0]} (optim.betas: [0.9, 0.999] is the short-budget recipe)")
    if options.get("identity_init"):
        causes.append("a zero output convolution (model.options.identity_init) with no warm-up "
                      "(optim.warmup)" if not o.warmup else "a zero output convolution (identity_init)")
    elif "identity_init" in options or _has_identity_init(config.model.name):
        causes.append("a random output convolution, which starts below the identity "
                      "(model.options.identity_init: true starts at it)")
    if o.lr > 5e-4 and not o.warmup:
        causes.append(f"lr {o.lr:g} without warm-up (optim.warmup: 60 is the short-budget recipe)")
    causes.append("a budget too short for this lr schedule")
    return (f"Warning: after {iteration} of {iterations} iterations the training loss is {gain:+.2f} dB over the "
            f"identity's (less than +{STALL_DB} dB): the run has not learned to beat its input yet. Likely causes: "
            f"{'; '.join(causes)}. See docs/decisions.md, 'Short-budget recipe'.")
