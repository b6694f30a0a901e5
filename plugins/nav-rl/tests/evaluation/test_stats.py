"""Statistics against hand computations and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mlcore_nav_rl.evaluation.stats import bootstrap_ci, compare_samples, comparison_table, hedges_g


def test_hedges_g_hand_computation():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0]
    pooled = math.sqrt((3 * np.var(a, ddof=1) + 3 * np.var(b, ddof=1)) / 6)
    assert hedges_g(a, b) == pytest.approx(-1.0 / pooled * (1 - 3 / (4 * 8 - 9)))


def test_compare_samples_matches_scipy_and_detects_a_difference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.3, 12), rng.normal(0.0, 0.3, 12)
    r = compare_samples(a, b)
    assert r["welch_p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert r["mannwhitney_p"] == pytest.approx(stats.mannwhitneyu(a, b).pvalue)
    assert r["welch_p"] < 0.001 and r["diff_ci_low"] > 0 and r["hedges_g"] > 1
    same = compare_samples(a, a + rng.normal(0, 0.01, 12))
    assert same["welch_p"] > 0.5 and same["diff_ci_low"] < 0 < same["diff_ci_high"]


def test_bootstrap_ci_contains_mean_and_degenerate_cases():
    x = np.arange(20, dtype=float)
    lo, hi = bootstrap_ci(x)
    assert lo < x.mean() < hi
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    r = compare_samples([1.0, 1.0], [1.0, 1.0])
    assert math.isnan(r["welch_p"]) and r["mannwhitney_p"] == 1.0


def test_table_has_one_row_per_comparison():
    r = compare_samples([1.0, 2.0, 3.0], [0.0, 1.0, 0.5])
    table = comparison_table([{"a": "per", "b": "plain", **r}])
    assert table.count("\n") == 2 and "| per | plain |" in table


def test_paired_compare_matches_scipy_and_censors_inf():
    from mlcore_nav_rl.evaluation.stats import paired_compare

    a = [3000.0, 5000.0, math.inf, 4000.0, 6000.0, 2000.0]
    b = [5000.0, 7000.0, 9000.0, math.inf, 8000.0, 6000.0]
    r = paired_compare(a, b, censor=16000.0)
    x = np.array([3000, 5000, 16000, 4000, 6000, 2000], float)
    y = np.array([5000, 7000, 9000, 16000, 8000, 6000], float)
    assert r["wilcoxon_p"] == pytest.approx(stats.wilcoxon(x, y, zero_method="zsplit").pvalue)
    assert r["paired_t_p"] == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert r["mean_diff"] == pytest.approx((x - y).mean())
    assert r["median_diff"] == pytest.approx(np.median(x - y))
    assert (r["n_a_lower"], r["n_a_higher"], r["ties"]) == (5, 1, 0)
    assert r["mean_diff_ci_low"] <= r["mean_diff"] <= r["mean_diff_ci_high"]
    # pairing matters: the same values shuffled within one sample lose the paired signal
    strong = paired_compare([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [1.5, 2.4, 3.6, 4.5, 5.5, 6.4, 7.6, 8.5])
    assert strong["paired_t_p"] < 0.01
    assert compare_samples([1.0, 2, 3, 4, 5, 6, 7, 8], [1.5, 2.4, 3.6, 4.5, 5.5, 6.4, 7.6, 8.5])["welch_p"] > 0.5
    with pytest.raises(ValueError, match="equal lengths"):
        paired_compare([1.0], [1.0, 2.0])
    assert paired_compare([1.0, 2.0], [1.0, 2.0])["wilcoxon_p"] == 1.0


def test_bootstrap_median_ci_with_never_reached_runs():
    from mlcore_nav_rl.evaluation.stats import bootstrap_median_ci

    lo, hi = bootstrap_median_ci([1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 7000.0, 8000.0, 9000.0])
    assert 1000 <= lo < 5000 < hi <= 9000
    lo, hi = bootstrap_median_ci([1000.0, 2000.0, math.inf, math.inf, math.inf])
    assert hi == math.inf and lo >= 1000
    assert bootstrap_median_ci([3.0, 3.0]) == (3.0, 3.0)


def test_paired_compare_against_a_hand_computation():
    """Six seeds, ``a`` faster on every one by 1..6 (x1000 steps): exact Wilcoxon and paired t by hand."""
    from mlcore_nav_rl.evaluation.stats import paired_compare

    b = [5000.0, 9000.0, 7000.0, 12000.0, 8000.0, 10000.0]
    d = [-1000.0, -2000.0, -3000.0, -4000.0, -5000.0, -6000.0]
    a = [x + y for x, y in zip(b, d)]
    r = paired_compare(a, b)
    # signed-rank: every difference negative, W+ = 0, the most extreme of 2^6 equally likely sign patterns
    assert r["wilcoxon_p"] == pytest.approx(2 / 2**6)
    # paired t: mean -3500, sd sqrt(3.5e6), t = mean / (sd / sqrt(6)), two-sided on 5 degrees of freedom
    t = -3500.0 / (math.sqrt(3.5e6) / math.sqrt(6))
    assert t == pytest.approx(-4.5826, abs=1e-4)
    assert r["paired_t_p"] == pytest.approx(2 * stats.t.sf(abs(t), df=5))
    assert (r["mean_diff"], r["median_diff"]) == (-3500.0, -3500.0)
    assert (r["n_a_lower"], r["n_a_higher"], r["ties"], r["n"]) == (6.0, 0.0, 0.0, 6.0)
    assert r["mean_diff_ci_low"] < -3500.0 < r["mean_diff_ci_high"] < 0
    # a never-reached seed counts as the censoring value: differences 16000-4000, 2000-3000, 0
    c = paired_compare([math.inf, 2000.0, 3000.0], [4000.0, 3000.0, 3000.0], censor=16000.0)
    assert c["mean_diff"] == pytest.approx((12000.0 - 1000.0 + 0.0) / 3) and c["median_diff"] == 0.0
    assert (c["n_a_lower"], c["n_a_higher"], c["ties"]) == (1.0, 1.0, 1.0)
