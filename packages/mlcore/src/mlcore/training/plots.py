"""``training_curves.png``: losses, learning rate and the extra logged values per epoch.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so it
works headless and from threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: record keys that get their own panel or are not curves
_RESERVED = ("epoch", "train_loss", "val_loss", "lr", "seconds", "grad_norm_max")


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for rec in history:
        v = rec.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(int(rec["epoch"]))
            ys.append(float(v))
    return xs, ys


def plot_training_curves(history: Sequence[dict[str, Any]], path: str | Path, *, title: str = "") -> Path | None:
    """Draw the history (list of epoch records) into ``path`` atomically; ``None`` if there is nothing to draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from mlcore.io import atomic_write

    if not history:
        return None
    extras = sorted({k for rec in history for k in rec if k not in _RESERVED and _series(history, k)[0]})
    panels = 2 + (1 if extras else 0)
    fig = Figure(figsize=(5 * panels, 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels)

    ax = axes[0]
    positive = True
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        xs, ys = _series(history, key)
        if xs:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=label)
            positive = positive and min(ys) > 0
    if positive and ax.lines:
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="loss", title="loss")
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend()

    ax = axes[1]
    xs, ys = _series(history, "lr")
    ax.plot(xs, ys, color="tab:green")
    ax.set(xlabel="epoch", ylabel="learning rate", title="learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(True, alpha=0.3)

    if extras:
        ax = axes[2]
        for key in extras:
            xs, ys = _series(history, key)
            ax.plot(xs, ys, label=key)
        ax.set(xlabel="epoch", title="other logged values")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
