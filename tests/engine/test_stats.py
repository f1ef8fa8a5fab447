from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from ratmir.engine.stats import (bootstrap_mean_ci, format_mean_std, markdown_table, mean_std, paired_comparison,
                                 wilcoxon_p)


def test_mean_std_ignores_inf_but_counts_it() -> None:
    s = mean_std([1.0, 3.0, float("inf")])
    assert s == {"mean": 2.0, "std": 1.0, "n": 3, "nonfinite": 1}
    empty = mean_std([float("inf")])
    assert np.isnan(empty["mean"]) and np.isnan(empty["std"]) and empty["nonfinite"] == 1


def test_table_helpers() -> None:
    assert format_mean_std(1.23456, 0.1, digits=3) == "1.235 ± 0.100"
    assert markdown_table(["a", "b"], [[1, "x"]]) == ["| a | b |", "|---|---|", "| 1 | x |"]


def test_wilcoxon_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(0.2, 1.0, 25)
    assert wilcoxon_p(d) == pytest.approx(sps.wilcoxon(d).pvalue, rel=1e-12)
    assert wilcoxon_p(np.zeros(5)) == 1.0
    # a clear shift: small p; symmetric noise: large p
    assert wilcoxon_p(np.arange(1, 21) / 10) < 1e-4
    assert wilcoxon_p(np.array([-2, -1, 1, 2.0])) == pytest.approx(1.0)


def test_bootstrap_ci_is_seeded_and_contains_the_mean() -> None:
    rng = np.random.default_rng(2)
    d = rng.normal(0.5, 1.0, (3, 40))
    a = bootstrap_mean_ci(d, resamples=2000, seed=7)
    assert a == bootstrap_mean_ci(d, resamples=2000, seed=7)
    assert a != bootstrap_mean_ci(d, resamples=2000, seed=8)
    assert a[0] < d.mean() < a[1]
    # a one-seed bootstrap agrees with scipy's percentile bootstrap within Monte-Carlo error
    one = d[:1]
    ref = sps.bootstrap((one[0],), np.mean, n_resamples=4000, method="percentile", random_state=0).confidence_interval
    ours = bootstrap_mean_ci(one, resamples=4000, seed=0)
    width = ref.high - ref.low
    assert abs(ours[0] - ref.low) < 0.1 * width and abs(ours[1] - ref.high) < 0.1 * width
    # wider with more spread between seeds
    shifted = d + np.array([[-1.0], [0.0], [1.0]])
    b = bootstrap_mean_ci(shifted, resamples=2000, seed=7)
    assert b[1] - b[0] > a[1] - a[0]
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean_ci(np.zeros((0, 3)))


def test_paired_comparison() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(40, 2, (3, 30))
    method = ref + 0.3 + rng.normal(0, 0.1, ref.shape)
    method[0, 5] = np.inf  # image 5 dropped
    c = paired_comparison(method, ref, method="a", reference="b", resamples=1000, seed=0)
    assert c.n_images == 29 and c.n_seeds == 3 and c.resamples == 1000
    keep = np.arange(30) != 5
    diff = (method - ref)[:, keep]
    assert c.mean_diff == pytest.approx(diff.mean())
    assert c.ci_low < c.mean_diff < c.ci_high and c.ci_low > 0
    assert c.p_value == pytest.approx(sps.wilcoxon(diff.mean(axis=0)).pvalue)
    assert c.images_better == 29 and c.seeds_better == 3
    assert c.as_row()["method"] == "a" and c.verdict == "higher" and c.as_row()["verdict"] == "higher"
    with pytest.raises(ValueError, match="same shape"):
        paired_comparison(ref[:, :3], ref, method="a", reference="b")
