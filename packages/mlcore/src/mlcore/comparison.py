"""Side-by-side comparison of run directories (``mlcore compare RUN_DIR...``).

:func:`compare_runs` gives one row per run: what ran, parameters, time, epochs-to-best, the
metrics (``metric.<name>``) and the config keys whose values differ between the runs
(``config.<table>.<key>``; a key one run lacks counts as differing).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlcore.config import flatten_dotted, load_file
from mlcore.errors import MlcoreError


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MlcoreError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def _count_params(run_dir: Path) -> int | None:
    """Parameters of the best model, counted from ``checkpoints/best.pt`` (no model code needed)."""
    ckpt_path = run_dir / "checkpoints" / "best.pt"
    if not ckpt_path.is_file():
        return None
    try:
        from mlcore.training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(ckpt_path)
    except MlcoreError:
        return None
    if isinstance(ckpt.get("num_params"), int):
        return int(ckpt["num_params"])
    state = ckpt.get("model")
    if not isinstance(state, dict):
        return None
    return int(sum(t.numel() for t in state.values() if hasattr(t, "numel") and t.is_floating_point()))


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """Collect what a run directory says about itself into one flat row."""
    if not run_dir.is_dir():
        raise MlcoreError(f"{run_dir}: no such run directory")
    cfg_path = run_dir / "config.toml"
    if not cfg_path.is_file():
        raise MlcoreError(f"{run_dir}: not a run directory (no config.toml)")
    run_table = load_file(cfg_path).get("run", {})
    summary = _read_json(run_dir / "summary.json") or {}
    metrics = _read_json(run_dir / "metrics.json") or summary.get("metrics") or {}
    stats = _read_json(run_dir / "training_stats.json") or {}
    history = stats.get("history", stats.get("epochs", [])) if isinstance(stats, dict) else stats
    row: dict[str, Any] = {
        "run": str(run_dir),
        "plugin": run_table.get("plugin", ""),
        "pipeline": run_table.get("pipeline", ""),
        "profile": run_table.get("profile", ""),
        "seed": run_table.get("seed"),
        "params": _count_params(run_dir),
        "epochs": len(history) if isinstance(history, list) else None,
        "best_epoch": stats.get("best_epoch") if isinstance(stats, dict) else None,
        "train_seconds": stats.get("train_seconds") if isinstance(stats, dict) else None,
        "run_seconds": summary.get("seconds"),
    }
    for key, value in flatten_dotted(metrics).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            row[f"metric.{key}"] = value
    return row


def config_differences(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Per run, ``{"config.<key>": value}`` for every config key whose value differs between the runs.

    The ``[run]`` table is left out (plugin, pipeline, profile and seed are columns of their own);
    a key missing from a run's ``config.toml`` is ``None`` there.
    """
    flat = []
    for run_dir in run_dirs:
        doc = load_file(run_dir / "config.toml")
        doc.pop("run", None)
        flat.append(flatten_dotted(doc))
    keys: list[str] = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    differing = [k for k in keys if any(f.get(k) != flat[0].get(k) for f in flat[1:])]
    return [{f"config.{k}": f.get(k) for k in differing} for f in flat]


def compare_runs(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """One row per run: :func:`summarize_run` plus the config keys that differ (:func:`config_differences`)."""
    rows = [summarize_run(d) for d in run_dirs]
    out = []
    for row, diff in zip(rows, config_differences(run_dirs), strict=True):
        metrics = {k: v for k, v in row.items() if k.startswith("metric.")}
        basics = {k: v for k, v in row.items() if k not in metrics}
        out.append({**basics, **diff, **metrics})
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of the rows (one column per key that any row has)."""
    if not rows:
        return "(no runs)"
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            return f"{v:.4g}"
        if isinstance(v, list | dict):
            return json.dumps(v)
        return str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    header = [c.removeprefix("metric.") for c in columns]
    # transpose: runs as columns read better when there are many metrics
    if len(columns) > 8:
        width = max(len(h) for h in header)
        col_w = [max(len(cells[i][j]) for j in range(len(columns))) for i in range(len(rows))]
        lines = []
        for j, h in enumerate(header):
            lines.append(h.ljust(width) + "  " + "  ".join(cells[i][j].rjust(col_w[i]) for i in range(len(rows))))
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[j]) for c in cells)) for j, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
