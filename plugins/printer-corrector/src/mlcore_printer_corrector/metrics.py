"""Tracking-error prediction metrics in mm (and μm): MAE, RMSE, R², percentiles, correlation, latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["AXES", "PERCENTILES", "error_metrics", "latency_ms"]

AXES = ("x", "y")
PERCENTILES = (50, 90, 95, 99)


def _r2(pred: np.ndarray, true: np.ndarray) -> float:
    ss_res = float(((true - pred) ** 2).sum())
    ss_tot = float(((true - true.mean()) ** 2).sum())
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


def _corr(pred: np.ndarray, true: np.ndarray) -> float:
    if pred.std() == 0 or true.std() == 0:
        return 0.0
    return float(np.corrcoef(pred, true)[0, 1])


def error_metrics(pred: np.ndarray, true: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Overall and per-axis figures of predicted vs true errors, both ``(N, 2)`` in mm.

    ``mae``/``rmse`` (mm, and ``*_um`` in μm) over both axes; ``r2`` and ``correlation`` are the
    means of the per-axis values (``r2_x``, ...); ``p50``..``p99`` are percentiles of the absolute
    prediction error (mm, both axes pooled); ``target_rms`` is the RMS of the true error itself.
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"predictions {pred.shape} and targets {true.shape} must both be (N, 2)")
    err = pred - true
    out: dict[str, float] = {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "target_rms": float(np.sqrt((true**2).mean())),
    }
    for i, axis in enumerate(AXES[: pred.shape[1]]):
        out[f"mae_{axis}"] = float(np.abs(err[:, i]).mean())
        out[f"rmse_{axis}"] = float(np.sqrt((err[:, i] ** 2).mean()))
        out[f"r2_{axis}"] = _r2(pred[:, i], true[:, i])
        out[f"correlation_{axis}"] = _corr(pred[:, i], true[:, i])
    n_axes = pred.shape[1]
    out["r2"] = float(np.mean([out[f"r2_{a}"] for a in AXES[:n_axes]]))
    out["correlation"] = float(np.mean([out[f"correlation_{a}"] for a in AXES[:n_axes]]))
    for q, v in zip(PERCENTILES, np.percentile(np.abs(err), PERCENTILES)):
        out[f"p{q}"] = float(v)
    for key in ("mae", "rmse", "mae_x", "mae_y", "rmse_x", "rmse_y", "target_rms"):
        if key in out:
            out[f"{key}_um"] = out[key] * 1000.0
    return {f"{prefix}{k}": v for k, v in out.items()}


def latency_ms(fn: Callable[[], Any], repeats: int = 200, warmup: int = 20) -> dict[str, float]:
    """Wall-clock latency of ``fn()`` in ms: ``mean``, ``p50``, ``p99`` over ``repeats`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    times *= 1000.0
    return {"mean": float(times.mean()), "p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}
