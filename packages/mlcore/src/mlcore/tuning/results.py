"""What a finished (or stopped) search writes: trials.csv, best_config.toml, best.json, plots, report.md.

Engine-neutral: it works on :class:`TrialRow` lists; :func:`rows_from_study` reads them from an
Optuna study (the Ray engine builds its own).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from mlcore.io import atomic_write_json, atomic_write_text
from mlcore.tuning.space import SearchConfig

log = logging.getLogger(__name__)


@attrs.define
class TrialRow:
    """One trial as written to ``trials.csv``."""

    number: int
    state: str  # complete | pruned | fail | running | waiting
    value: float | None
    epochs: int
    seconds: float
    params: dict[str, Any]
    run_dir: str


@attrs.define
class TuneResult:
    """What :func:`mlcore.api.tune` returns.

    Attributes:
        out_dir: the study directory; best_value, best_params, best_trial: the best complete trial;
        best_config: ``best_config.toml`` (reproduce with ``mlcore run --config``);
        trials: every trial; plots: the plot files written; report: ``report.md``.
    """

    out_dir: Path
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    best_config: Path | None
    trials: list[TrialRow]
    plots: dict[str, Path]
    report: Path

    @property
    def epochs(self) -> int:
        """Epochs (or evaluation points) run by all trials together."""
        return sum(t.epochs for t in self.trials)

    def count(self, state: str) -> int:
        """How many trials ended in ``state``."""
        return sum(t.state == state for t in self.trials)


def rows_from_study(study: Any) -> list[TrialRow]:
    """Every trial of an Optuna study as a :class:`TrialRow`."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = t.user_attrs.get("seconds")
        if seconds is None and t.datetime_start and t.datetime_complete:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name.lower(),
                value=t.value if t.state.name == "COMPLETE" else None,
                epochs=int(t.user_attrs.get("epochs", len(t.intermediate_values))),
                seconds=float(seconds or 0.0),
                params=dict(t.params),
                run_dir=str(t.user_attrs.get("run_dir", "")),
            )
        )
    return rows


def best_row(rows: Sequence[TrialRow], search: SearchConfig) -> TrialRow | None:
    """The complete trial with the best value (the earliest on a tie)."""
    best = None
    for row in rows:
        if row.state != "complete" or row.value is None or not math.isfinite(row.value):
            continue
        if best is None or search.better(row.value, best.value):  # type: ignore[arg-type]
            best = row
    return best


def write_csv(rows: Sequence[TrialRow], search: SearchConfig, path: Path) -> Path:
    """``trials.csv``: number, state, value, epochs, seconds, one column per searched key, run_dir."""
    keys = [p.key for p in search.params]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["number", "state", search.metric, "epochs", "seconds", *keys, "run_dir"])
    for r in sorted(rows, key=lambda r: r.number):
        value = "" if r.value is None else repr(r.value)
        writer.writerow(
            [r.number, r.state, value, r.epochs, f"{r.seconds:.3f}", *(r.params.get(k, "") for k in keys), r.run_dir]
        )
    return atomic_write_text(path, buf.getvalue())


PLOTS: dict[str, str] = {
    "history": "plot_optimization_history",
    "importances": "plot_param_importances",
    "parallel_coordinates": "plot_parallel_coordinate",
    "slice": "plot_slice",
    "contour": "plot_contour",
}


def _figure(ax: Any) -> Any:
    import numpy as np

    return np.ravel(np.asarray(ax, dtype=object))[0].figure


def write_plots(study: Any, plots_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The standard Optuna plots (``optuna.visualization.matplotlib``) as PNGs; returns (written, skipped with why)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import optuna
    import optuna.visualization.matplotlib as ovm

    plots_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    varied = {k for t in complete for k in t.params if len({str(u.params.get(k)) for u in complete}) > 1}
    needs: dict[str, Callable[[], str]] = {
        "history": lambda: "" if complete else "no complete trial",
        "importances": lambda: "" if len(complete) >= 2 and varied else "needs 2 complete trials that differ",
        "parallel_coordinates": lambda: "" if complete else "no complete trial",
        "slice": lambda: "" if complete else "no complete trial",
        "contour": lambda: "" if len(complete) >= 2 and len(varied) >= 2 else "needs 2 parameters that vary",
    }
    import warnings

    for name, func in PLOTS.items():
        why = needs[name]()
        if why:
            skipped[name] = why
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optuna.logging.set_verbosity(optuna.logging.ERROR)
                kwargs = {"params": sorted(varied)} if name in ("slice", "contour") else {}
                ax = getattr(ovm, func)(study, **kwargs)
                fig = _figure(ax)
                if name in ("slice", "contour"):
                    fig.set_size_inches(
                        max(6.0, 3.2 * max(1, len(varied))), 4.8 if name == "slice" else 3.2 * len(varied)
                    )
                path = plots_dir / f"{name}.png"
                fig.savefig(path, dpi=90, bbox_inches="tight")
                plt.close(fig)
            written[name] = path
        except (ValueError, RuntimeError, optuna.exceptions.OptunaError) as exc:
            skipped[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            plt.close("all")
    return written, skipped


def write_best(out_dir: Path, best: TrialRow | None, search: SearchConfig) -> Path | None:
    """``best_config.toml`` (the best trial's own ``config.toml``) and ``best.json``."""
    if best is None:
        return None
    source = out_dir / best.run_dir / "config.toml"
    target = out_dir / "best_config.toml"
    header = (
        f"# The best trial ({best.number}) of the search in this directory: {search.metric} = {best.value!r}.\n"
        "# Reproduce it with `mlcore run --config best_config.toml`.\n"
    )
    atomic_write_text(target, header + source.read_text(encoding="utf-8"))
    atomic_write_json(
        out_dir / "best.json",
        {
            "trial": best.number,
            "metric": search.metric,
            "direction": search.direction,
            "value": best.value,
            "params": best.params,
            "epochs": best.epochs,
            "run_dir": best.run_dir,
        },
    )
    return target


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_report(
    out_dir: Path,
    rows: Sequence[TrialRow],
    search: SearchConfig,
    *,
    engine: str,
    plots: dict[str, Path],
    skipped: dict[str, str],
    seconds: float,
    notes: Sequence[str] = (),
) -> Path:
    """``report.md``: the search, its outcome, the best config, the top trials and the plots."""
    best = best_row(rows, search)
    states = {s: sum(r.state == s for r in rows) for s in ("complete", "pruned", "fail")}
    epochs = sum(r.epochs for r in rows)
    complete_epochs = [r.epochs for r in rows if r.state == "complete"]
    lines = [
        "# Hyperparameter search",
        "",
        f"{engine} searched {len(search.params)} parameter(s) of this config with the {search.sampler} sampler "
        f"and the {search.pruner} pruner, {search.direction.removesuffix('e')}ing `{search.metric}`"
        + (f" (pruned on the per-epoch `{search.report_key}`)" if search.report_key != search.metric else "")
        + ".",
        "",
        f"**{len(rows)} trials** (every session of this study; this session took {seconds:.0f} s): "
        f"{states['complete']} complete, "
        f"{states['pruned']} pruned, {states['fail']} failed; together {epochs} epochs"
        + (f" (a complete trial ran {max(complete_epochs)})" if complete_epochs else "")
        + ".",
        "",
    ]
    if best is not None:
        lines += [
            f"The best trial is **#{best.number}** with `{search.metric}` = **{_fmt(best.value)}**. Reproduce it with:",
            "",
            "    mlcore run --config best_config.toml",
            "",
            "| parameter | best value |",
            "|---|---|",
            *(f"| `{k}` | {_fmt(v)} |" for k, v in best.params.items()),
            "",
        ]
    else:
        lines += ["No trial completed, so there is no best config yet.", ""]
    ranked = sorted(
        (r for r in rows if r.state == "complete" and r.value is not None),
        key=lambda r: float(r.value or 0.0) * (1.0 if search.direction == "minimize" else -1.0),
    )[:10]
    if ranked:
        keys = [p.key for p in search.params]
        lines += [
            "## Top trials",
            "",
            f"| trial | {search.metric} | epochs | " + " | ".join(f"`{k}`" for k in keys) + " |",
            "|---|---|---|" + "---|" * len(keys),
            *(
                f"| {r.number} | {_fmt(r.value)} | {r.epochs} | "
                + " | ".join(_fmt(r.params[k]) if k in r.params else "–" for k in keys)
                + " |"
                for r in ranked
            ),
            "",
            "All trials: [trials.csv](trials.csv); each trial's run directory: `trials/NNNN/`.",
            "",
        ]
    if plots or skipped:
        lines += ["## Plots", ""]
        titles = {
            "history": "Optimisation history",
            "importances": "Parameter importances (fANOVA)",
            "parallel_coordinates": "Parallel coordinates",
            "slice": "Slice plot",
            "contour": "Contour plot",
        }
        for name, path in plots.items():
            lines += [f"### {titles.get(name, name)}", "", f"![{name}]({path.relative_to(out_dir).as_posix()})", ""]
        for name, why in skipped.items():
            lines.append(f"- {titles.get(name, name)}: not drawn ({why}).")
        if skipped:
            lines.append("")
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    return atomic_write_text(out_dir / "report.md", "\n".join(lines))
