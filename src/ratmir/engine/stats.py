"""Summaries and paired comparisons shared by ``ratmir evaluate``, ``ratmir report`` and
``ratmir study``.

- :func:`mean_std`: mean ± std of the finite values (an image restored exactly has PSNR inf).
- :func:`paired_comparison`: a method against a reference on the same test images and seeds:
  the mean per-image difference, a bootstrap 95 % interval that resamples seeds and images
  (both are random draws: the test images from the population of scans, the seeds from the
  training randomness), and a Wilcoxon signed-rank p-value over images (the per-image
  difference averaged over seeds, so the images are the independent units).
- :func:`format_mean_std` / :func:`nonfinite_flag` / :func:`markdown_table`: table cells and
  Markdown tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 10_000


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and population std of the finite values; ``n`` counts every value and ``nonfinite``
    those left out (NaN, or PSNR = inf for an output identical to its reference). Without any
    finite value mean and std are NaN.

    >>> mean_std([1.0, 3.0, float("inf")])
    {'mean': 2.0, 'std': 1.0, 'n': 3, 'nonfinite': 1}
    """
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    return {"mean": float(finite.mean()) if finite.size else float("nan"),
            "std": float(finite.std()) if finite.size else float("nan"), "n": int(arr.size),
            "nonfinite": int(arr.size - finite.size)}


def format_mean_std(mean: float, std: float, *, digits: int = 2) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def nonfinite_flag(nonfinite: int | str) -> str:
    """' (k non-finite)' after a mean ± std cell when k values were left out, else ''."""
    return f" ({nonfinite} non-finite)" if nonfinite else ""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Lines of a Markdown table (cells formatted with ``str``)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return lines


def bootstrap_mean_ci(diffs: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` [seeds, images].

    Each resample draws seeds and images with replacement, independently (a crossed
    bootstrap), and takes the mean of the selected block; deterministic for a given ``seed``.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[None]
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"diffs must be a non-empty [seeds, images] array, got shape {d.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    n_seeds, n_images = d.shape
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # blocks keep memory small
        k = min(1000, resamples - start)
        s = rng.integers(0, n_seeds, (k, n_seeds))
        i = rng.integers(0, n_images, (k, n_images))
        means[start:start + k] = d[s[:, :, None], i[:, None, :]].mean(axis=(1, 2))
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def wilcoxon_p(diffs: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (``scipy.stats.wilcoxon``,
    zero differences dropped); 1.0 when every difference is zero."""
    from scipy.stats import wilcoxon

    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


@dataclass(frozen=True)
class PairedComparison:
    """``method`` minus ``reference`` on the same images and seeds (positive: method higher)."""

    method: str
    reference: str
    metric: str
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_seeds: int
    n_images: int
    images_better: int  # images whose seed-averaged difference is > 0
    seeds_better: int  # seeds whose image-averaged difference is > 0
    resamples: int
    level: float

    @property
    def verdict(self) -> str:
        """What the interval resolves: ``higher`` / ``lower`` (it excludes 0) or ``unresolved``."""
        return "higher" if self.ci_low > 0 else "lower" if self.ci_high < 0 else "unresolved"

    def as_row(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def paired_comparison(method_values: np.ndarray, reference_values: np.ndarray, *, method: str, reference: str,
                      metric: str = "psnr", resamples: int = DEFAULT_RESAMPLES, level: float = 0.95,
                      seed: int = 0) -> PairedComparison:
    """Compare two [seeds, images] arrays of the same images (rows: seeds, columns: images).

    Non-finite pairs (a PSNR of inf) are dropped image-wise: an image counts only if it is
    finite for both methods in every seed.
    """
    a, b = (np.asarray(v, dtype=np.float64) for v in (method_values, reference_values))
    a, b = (v[None] if v.ndim == 1 else v for v in (a, b))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"method and reference values must both be [seeds, images] arrays of the same shape, "
                         f"got {a.shape} and {b.shape}")
    keep = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    d = (a - b)[:, keep]
    if d.size == 0:
        raise ValueError(f"no finite pairs to compare for {method} vs {reference} ({metric})")
    low, high = bootstrap_mean_ci(d, resamples=resamples, level=level, seed=seed)
    per_image = d.mean(axis=0)
    return PairedComparison(method=method, reference=reference, metric=metric, mean_diff=float(d.mean()),
                            ci_low=low, ci_high=high, p_value=wilcoxon_p(per_image), n_seeds=d.shape[0],
                            n_images=d.shape[1], images_better=int((per_image > 0).sum()),
                            seeds_better=int((d.mean(axis=1) > 0).sum()), resamples=resamples, level=level)
