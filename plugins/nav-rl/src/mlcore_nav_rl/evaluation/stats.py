"""Statistical comparison of runs/configurations over seeds (scipy).

:func:`compare_samples` reports, for two samples (e.g. final success rates of 5 seeds each):
the means, their difference with a bootstrap confidence interval, Welch's t-test, the
Mann–Whitney U test, and Hedges' g (bias-corrected Cohen's d). :func:`comparison_table`
formats several comparisons as a Markdown table. :func:`paired_compare` is the paired version
(same seed in both samples): Wilcoxon signed-rank and paired t-test on the per-seed differences.
:func:`bootstrap_median_ci` gives a CI of a median (e.g. steps to a threshold, ``inf`` = never).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float:
    """Standardised mean difference ``(mean(a) - mean(b)) / pooled_sd`` with the small-sample correction."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return float("nan")
    pooled = math.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    diff = x.mean() - y.mean()
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(float("inf"), diff)
    correction = 1 - 3 / (4 * (nx + ny) - 9)
    return float(diff / pooled * correction)


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-BCa bootstrap CI of the mean (scipy); a single value gives ``(v, v)``."""
    from scipy import stats

    x = np.asarray(values, float)
    if len(x) < 2 or np.all(x == x[0]):
        return float(x.mean()), float(x.mean())
    res = stats.bootstrap(
        (x,), np.mean, confidence_level=confidence, n_resamples=n_resamples, random_state=seed, method="percentile"
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_diff_ci(
    a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap CI of ``mean(a) - mean(b)`` (independent resampling of both samples)."""
    from scipy import stats

    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) < 2 or len(y) < 2:
        d = float(x.mean() - y.mean())
        return d, d
    res = stats.bootstrap(
        (x, y),
        lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis),
        confidence_level=confidence,
        n_resamples=n_resamples,
        random_state=seed,
        method="percentile",
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare_samples(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95) -> dict[str, float]:
    """Welch t, Mann–Whitney U, Hedges' g and a bootstrap CI of the mean difference ``a - b``."""
    from scipy import stats

    x, y = np.asarray(a, float), np.asarray(b, float)
    out: dict[str, float] = {
        "n_a": float(len(x)),
        "n_b": float(len(y)),
        "mean_a": float(x.mean()),
        "mean_b": float(y.mean()),
        "diff": float(x.mean() - y.mean()),
        "hedges_g": hedges_g(a, b),
    }
    lo, hi = bootstrap_diff_ci(a, b, confidence=confidence)
    out["diff_ci_low"], out["diff_ci_high"] = lo, hi
    if len(x) >= 2 and len(y) >= 2 and (x.var() > 0 or y.var() > 0):
        t = stats.ttest_ind(x, y, equal_var=False)
        out["welch_t"], out["welch_p"] = float(t.statistic), float(t.pvalue)
    else:
        out["welch_t"], out["welch_p"] = float("nan"), float("nan")
    if len(x) and len(y) and not (np.all(x == x[0]) and np.all(y == x[0])):
        u = stats.mannwhitneyu(x, y, alternative="two-sided")
        out["mannwhitney_u"], out["mannwhitney_p"] = float(u.statistic), float(u.pvalue)
    else:
        out["mannwhitney_u"], out["mannwhitney_p"] = float("nan"), 1.0
    return out


def bootstrap_median_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the median; ``inf`` values (e.g. "never reached") are allowed."""
    x = np.asarray(values, float)
    if len(x) < 2 or np.all(x == x[0]):
        m = float(np.median(x))
        return m, m
    rng = np.random.default_rng(seed)
    # medians of resamples: with infs np.median stays well defined (inf when over half are inf)
    meds = np.sort(np.median(x[rng.integers(0, len(x), (n_resamples, len(x)))], axis=1))
    alpha = (1 - confidence) / 2
    lo = meds[int(np.floor(alpha * (n_resamples - 1)))]
    hi = meds[int(np.ceil((1 - alpha) * (n_resamples - 1)))]
    return float(lo), float(hi)


def paired_compare(
    a: Sequence[float], b: Sequence[float], *, censor: float | None = None, confidence: float = 0.95
) -> dict[str, float]:
    """Paired comparison of ``a`` vs ``b`` (element ``i`` of both from the same seed).

    ``censor`` replaces ``inf`` (e.g. "never reached the threshold") by a value worse than any
    observed one, so the ranks of the Wilcoxon signed-rank test stay meaningful. Returns the
    median and mean per-seed difference ``a - b`` with a bootstrap CI of the mean difference, the
    Wilcoxon signed-rank p-value (zero differences split, ``zsplit``) and the paired t-test p-value.
    """
    from scipy import stats

    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths, got {len(x)} and {len(y)}")
    if censor is not None:
        x, y = np.where(np.isinf(x), censor, x), np.where(np.isinf(y), censor, y)
    d = x - y
    out: dict[str, float] = {
        "n": float(len(d)),
        "median_diff": float(np.median(d)),
        "mean_diff": float(d.mean()),
        "n_a_lower": float(np.sum(d < 0)),
        "n_a_higher": float(np.sum(d > 0)),
        "ties": float(np.sum(d == 0)),
    }
    lo, hi = bootstrap_ci(d, confidence=confidence)
    out["mean_diff_ci_low"], out["mean_diff_ci_high"] = lo, hi
    if len(d) >= 2 and np.any(d != 0):
        out["wilcoxon_p"] = float(stats.wilcoxon(x, y, zero_method="zsplit").pvalue)
        t = stats.ttest_rel(x, y)
        out["paired_t_p"] = float(t.pvalue) if np.isfinite(t.pvalue) else 1.0
    else:
        out["wilcoxon_p"], out["paired_t_p"] = 1.0, 1.0
    return out


def comparison_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of :func:`compare_samples` results (each row also holds ``a`` and ``b`` labels)."""
    head = "| A | B | mean A | mean B | diff [95% CI] | Welch p | Mann–Whitney p | Hedges g |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['a']} | {r['b']} | {r['mean_a']:.3f} | {r['mean_b']:.3f} | "
            f"{r['diff']:+.3f} [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}] | "
            f"{r['welch_p']:.3g} | {r['mannwhitney_p']:.3g} | {r['hedges_g']:+.2f} |"
        )
    return "\n".join(lines)
