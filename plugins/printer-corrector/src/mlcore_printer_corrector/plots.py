"""The evaluation plots (matplotlib, Agg backend; imported only when plotting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["compensation_plot", "evaluation_plots"]


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def evaluation_plots(pred: np.ndarray, true: np.ndarray, metrics: dict[str, float], out: Path) -> list[Path]:
    """``trajectory_comparison``, ``error_distribution``, ``error_correlation`` and ``per_axis_error`` PNGs."""
    plt = _plt()
    out.mkdir(parents=True, exist_ok=True)
    um_p, um_t = pred * 1000, true * 1000
    paths = []
    n = min(600, pred.shape[0])
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for i, name in enumerate(("X", "Y")):
        axes[i].plot(um_t[:n, i], label="simulated", linewidth=1.2)
        axes[i].plot(um_p[:n, i], label="predicted", linewidth=1.0, linestyle="--")
        axes[i].set_ylabel(f"error {name} (μm)")
    axes[0].legend(loc="upper right")
    axes[1].set_xlabel("test window (first held-out layer, in order)")
    fig.suptitle("Tracking error: simulated vs predicted")
    fig.tight_layout()
    paths.append(out / "trajectory_comparison.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    resid = (um_p - um_t).reshape(-1)
    ax.hist(resid, bins=80, color="tab:blue", alpha=0.8)
    for q in (50, 95, 99):
        ax.axvline(metrics[f"p{q}"] * 1000, color="black", linestyle=":", linewidth=1)
        ax.axvline(-metrics[f"p{q}"] * 1000, color="black", linestyle=":", linewidth=1)
    ax.set_xlabel("prediction error (μm), both axes; dotted: ±p50/p95/p99 of |error|")
    ax.set_ylabel("count")
    fig.tight_layout()
    paths.append(out / "error_distribution.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    for i, name in enumerate(("x", "y")):
        axes[i].scatter(um_t[:, i], um_p[:, i], s=2, alpha=0.3)
        lo, hi = float(um_t[:, i].min()), float(um_t[:, i].max())
        axes[i].plot([lo, hi], [lo, hi], color="black", linewidth=1)
        axes[i].set_title(f"{name}: R² {metrics[f'r2_{name}']:.3f}, r {metrics[f'correlation_{name}']:.3f}")
        axes[i].set_xlabel("simulated error (μm)")
        axes[i].set_ylabel("predicted (μm)")
    fig.tight_layout()
    paths.append(out / "error_correlation.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = np.arange(2)
    ax.bar(xs - 0.2, [metrics["mae_x_um"], metrics["mae_y_um"]], width=0.4, label="MAE")
    ax.bar(xs + 0.2, [metrics["rmse_x_um"], metrics["rmse_y_um"]], width=0.4, label="RMSE")
    ax.set_xticks(xs, ["X", "Y"])
    ax.set_ylabel("prediction error (μm)")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "per_axis_error.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def compensation_plot(t: np.ndarray, before: np.ndarray, after: np.ndarray, path: Path) -> Path:
    """Tracking error of one layer without and with feed-forward compensation."""
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for i, name in enumerate(("X", "Y")):
        axes[i].plot(t, before[:, i] * 1000, label="uncompensated", linewidth=1)
        axes[i].plot(t, after[:, i] * 1000, label="compensated", linewidth=1)
        axes[i].set_ylabel(f"error {name} (μm)")
    axes[0].legend(loc="upper right")
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
