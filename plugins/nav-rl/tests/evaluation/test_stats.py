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
