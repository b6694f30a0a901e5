"""A small Markdown run report (``report.md``) listing metrics and the plots of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlcore.io import atomic_write_text


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """A two-column Markdown table of scalar metrics."""
    lines = ["| metric | value |", "|---|---|"]
    for key, value in metrics.items():
        if isinstance(value, float):
            lines.append(f"| {key} | {value:.6g} |")
        elif isinstance(value, int | str | bool) or value is None:
            lines.append(f"| {key} | {value} |")
    return "\n".join(lines)


def write_report(
    run_dir: str | Path,
    *,
    title: str,
    metrics: Mapping[str, Any],
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``<run_dir>/report.md``: title, metrics table, extra sections, and every PNG in the run."""
    run = Path(run_dir)
    parts = [f"# {title}", "", "## Metrics", "", metrics_table(metrics), ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body.rstrip(), ""]
    images = sorted(p.relative_to(run) for p in run.glob("*.png")) + sorted(
        p.relative_to(run) for p in run.glob("plots/*.png")
    )
    if images:
        parts += ["## Plots", ""]
        parts += [f"![{p.stem}]({p.as_posix()})" for p in images]
        parts.append("")
    return atomic_write_text(run / "report.md", "\n".join(parts))
