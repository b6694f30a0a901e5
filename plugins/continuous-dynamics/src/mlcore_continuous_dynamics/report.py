"""The comparison of the ``compare`` pipeline: rows, ``comparison.json``, plots and ``report.md``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.io import atomic_write_text, read_json
from mlcore_continuous_dynamics.sim import STATE_GROUPS, WEATHER_FACTORS

if TYPE_CHECKING:
    from mlcore.pipelines import RunContext
    from mlcore_continuous_dynamics.compare import CompareConfig, RunJob

__all__ = ["comparison_rows", "markdown_table", "write_comparison"]

REFERENCE_LABELS = {
    "persistence": "persistence (next = current)",
    "true_model": "simulator, true parameters, weather known",
}


def _curve(run_dir: str) -> list[float]:
    path = Path(run_dir) / "rollout_curve.json"
    return list(read_json(path)["mse"]["model"]) if path.is_file() else []


def comparison_rows(
    ctx: RunContext,
    cfg: CompareConfig,
    jobs: list[RunJob],
    results: dict[str, dict[str, Any]],
    references: dict[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The table's rows (models, then references) and the ablation rows."""
    rows: list[dict[str, Any]] = []
    for job in jobs:
        if job.name not in cfg.models:
            continue
        res = results.get(job.name, {"status": "not run", "error": None, "metrics": {}, "run_dir": str(job.out)})
        m = res["metrics"] or {}
        rows.append(
            {
                "name": job.name,
                "kind": "model",
                "status": res["status"],
                "error": res.get("error"),
                "mse": m.get("mse"),
                "groups": {g: m.get(f"mse/{g}") for g in STATE_GROUPS},
                "curve": _curve(res["run_dir"]) if res["status"] == "completed" else [],
                "train_seconds": m.get("train_seconds"),
                "wall_time": res.get("wall_time"),
                "params": m.get("params"),
                "best_epoch": m.get("best_epoch"),
                "epochs_run": m.get("epochs_run"),
                "train_step_ms": m.get("train_step_ms"),
                "perm_increase": {f: m.get(f"perm_increase/{f}") for f in WEATHER_FACTORS},
            }
        )
    for name, ref in references.items():
        rows.append({"name": name, "kind": "reference", "status": "reference", "error": None, **ref})
    ablation: list[dict[str, Any]] = []
    if cfg.ablation.enabled:
        base = results.get(cfg.ablation.model, {}).get("metrics") or {}
        base_mse = base.get("mse")
        for job in jobs:
            if job.name in cfg.models:
                continue
            res = results.get(job.name, {"status": "not run", "metrics": {}})
            mse = (res.get("metrics") or {}).get("mse")
            hidden = job.name.rsplit("-without-", 1)[-1]
            perm = base.get(f"perm_increase/{hidden}") if hidden != "all" else None
            ablation.append(
                {
                    "withheld": hidden,
                    "status": res["status"],
                    "mse": mse,
                    "with_weather_mse": base_mse,
                    "increase": None if mse is None or base_mse is None else mse - base_mse,
                    "ratio": None if mse is None or not base_mse else mse / base_mse,
                    "permutation_increase": perm,
                }
            )
    return rows, ablation


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec)


def markdown_table(rows: list[dict[str, Any]], horizons: tuple[int, ...] = (1, 10, 50)) -> str:
    """One line per model and reference: MSE, per-group MSE, rollout MSE at ``horizons``, cost."""
    head = ["model", "test MSE", *STATE_GROUPS, *(f"rollout H={h}" for h in horizons)]
    head += ["train s", "params", "best epoch / run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        curve = row.get("curve") or []
        name = f"`{row['name']}`" if row["kind"] == "model" else f"*{REFERENCE_LABELS.get(row['name'], row['name'])}*"
        if row["status"] not in ("completed", "reference"):
            lines.append(
                f"| {name} | {row['status']}: {(row.get('error') or '').replace('|', '/')} |" + " |" * (len(head) - 2)
            )
            continue
        cells = [name, _fmt(row["mse"])]
        cells += [_fmt(row["groups"].get(g)) for g in STATE_GROUPS]
        cells += [_fmt(curve[h - 1]) if len(curve) >= h else "–" for h in horizons]
        if row["kind"] == "model":
            epochs = f"{_fmt(row['best_epoch'], '.0f')} / {_fmt(row['epochs_run'], '.0f')}"
            cells += [_fmt(row["train_seconds"], ".1f"), _fmt(row["params"], ",.0f"), epochs]
        else:
            cells += ["–", "–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plots(ctx: RunContext, rows: list[dict[str, Any]], ablation: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        curve = row.get("curve") or []
        if curve:
            style = "-" if row["kind"] == "model" else "--"
            ax.plot(range(1, len(curve) + 1), curve, style, label=row["name"])
    ax.set_yscale("log")
    ax.set_xlabel("rollout step H")
    ax.set_ylabel("normalised MSE")
    ax.set_title("Autoregressive rollout error")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ctx.plots_dir / "rollout_error.png", dpi=110)
    plt.close(fig)

    done = [r for r in rows if r["status"] in ("completed", "reference")]
    if done:
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.8 / len(done)
        for i, row in enumerate(done):
            values = [row["groups"].get(g) or float("nan") for g in STATE_GROUPS]
            ax.bar([k + i * width for k in range(len(STATE_GROUPS))], values, width, label=row["name"])
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(STATE_GROUPS))], list(STATE_GROUPS))
        ax.set_yscale("log")
        ax.set_ylabel("one-step normalised MSE")
        ax.set_title("Error per state group")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(ctx.plots_dir / "state_groups.png", dpi=110)
        plt.close(fig)

    perm = [r for r in rows if r["kind"] == "model" and r["status"] == "completed"]
    if perm:
        fig, ax = plt.subplots(figsize=(7, 4))
        factors = list(WEATHER_FACTORS)
        width = 0.8 / len(perm)
        for i, row in enumerate(perm):
            values = [max(row["perm_increase"].get(f) or 0.0, 0.0) for f in factors]
            ax.bar([k + i * width for k in range(len(factors))], values, width, label=row["name"])
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(factors))], factors)
        ax.set_ylabel("test MSE increase when permuted")
        ax.set_title("Weather factor importance (permutation)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(ctx.plots_dir / "weather_importance.png", dpi=110)
        plt.close(fig)


def _headline(rows: list[dict[str, Any]]) -> str:
    models = [r for r in rows if r["kind"] == "model" and r["status"] == "completed"]
    refs = {r["name"]: r for r in rows if r["kind"] == "reference"}
    failed = [r for r in rows if r["kind"] == "model" and r["status"] != "completed"]
    if not models:
        return "No model finished training; see the table for each model's error."
    best = min(models, key=lambda r: r["mse"])
    best_roll = min((r for r in models if r["curve"]), key=lambda r: r["curve"][-1], default=None)
    pers, true = refs["persistence"], refs["true_model"]
    text = (
        f"Best one-step model: `{best['name']}`, normalised test MSE {_fmt(best['mse'])} — "
        f"{_fmt(pers['mse'] / best['mse'] if best['mse'] else None, '.1f')}x lower than persistence "
        f"({_fmt(pers['mse'])}), against a floor of {_fmt(true['mse'])} for the simulator's own equations with "
        "the weather known (the gusts change within a sample interval, so even they are not exact). "
    )
    if best_roll is not None:
        h = len(best_roll["curve"])
        text += (
            f"Over a {h}-step autoregressive rollout the lowest error is `{best_roll['name']}`'s "
            f"{_fmt(best_roll['curve'][-1])} at H={h} (persistence: {_fmt(pers['curve'][-1])}, true model: "
            f"{_fmt(true['curve'][-1])})."
        )
    beat = [r["name"] for r in models if r["mse"] < pers["mse"]]
    text += f" {len(beat)} of {len(models)} models beat persistence one step ahead."
    if failed:
        text += " Failed: " + ", ".join(f"`{r['name']}` ({r['error']})" for r in failed) + "."
    return text


def write_comparison(
    ctx: RunContext,
    cfg: CompareConfig,
    rows: list[dict[str, Any]],
    ablation: list[dict[str, Any]],
    references: dict[str, dict[str, Any]],
    results: dict[str, dict[str, Any]],
    wall: float,
) -> dict[str, Any]:
    """``comparison.json``, the plots and ``report.md``; returns the run's headline metrics."""
    from mlcore.io import atomic_write_json

    data = (
        read_json(ctx.out_dir / "data" / "manifest.json")
        if (ctx.out_dir / "data" / "manifest.json").is_file()
        else None
    )
    atomic_write_json(ctx.out_dir / "comparison.json", {"rows": rows, "ablation": ablation, "wall_time": wall})
    _plots(ctx, rows, ablation)
    horizon = min(cfg.evaluator.horizon, cfg.dataset.horizon)
    sections = [
        (
            "What was run",
            (
                f"{len(cfg.models)} dynamics models trained on the same simulated quadrotor episodes "
                f"({cfg.dataset.episodes} episodes of {cfg.dataset.episode_seconds:g} s "
                f"at {cfg.dataset.sample_rate:g} Hz, "
                f"RK4 with {cfg.dataset.substeps} substeps; split by episode"
                + (f"; data in `{Path(cfg.dataset.path or 'data')}`" if data is None else "")
                + f"), profile `{ctx.profile}`, seed {ctx.seed}. Each predicts the next 12-D state from "
                f"{cfg.dataset.sequence_length} steps of states, actions and weather; errors are MSEs of the "
                "normalised state (1.0 = the state's own spread), on held-out test episodes. Rollouts feed each "
                f"model its own predictions for {horizon} steps, from up to "
                f"{cfg.evaluator.max_rollout_windows or 'all'} evenly spread test windows "
                "(the rollout columns; the test MSE uses every test window). "
                f"Wall time of all training: {wall:.0f} s."
            ),
        ),
        ("Headline", _headline(rows)),
        ("Comparison", markdown_table(rows, horizons=tuple(h for h in (1, 10, horizon) if h <= horizon))),
    ]
    if ablation:
        lines = ["| weather withheld | test MSE | with weather | increase | ratio |", "|---|---|---|---|---|"]
        for a in ablation:
            lines.append(
                f"| {a['withheld']} | {_fmt(a['mse'])} | {_fmt(a['with_weather_mse'])} | {_fmt(a['increase'])} | "
                f"{_fmt(a['ratio'], '.2f')} |"
            )
        sections.append(
            (
                f"Weather ablation ({cfg.ablation.model})",
                "Retrained without the factor (its inputs set to the training mean):\n\n" + "\n".join(lines),
            )
        )
    perm_rows = [r for r in rows if r["kind"] == "model" and r["status"] == "completed"]
    if perm_rows and cfg.evaluator.permutation:
        head = "| model | " + " | ".join(WEATHER_FACTORS) + " |"
        lines = [head, "|" + "---|" * (len(WEATHER_FACTORS) + 1)]
        for r in perm_rows:
            lines.append(
                f"| `{r['name']}` | " + " | ".join(_fmt(r["perm_increase"].get(f)) for f in WEATHER_FACTORS) + " |"
            )
        sections.append(
            (
                "Weather factor importance (permutation)",
                "Increase of the one-step test MSE when one factor is shuffled across test windows. Temperature "
                "acts on the vehicle only through the air density, which the models also see, so it should matter "
                "little:\n\n" + "\n".join(lines),
            )
        )
    files = (
        "`comparison.json`, `<model>_training_results.json`, `checkpoints/<model>_best.pt`, "
        "`models/<model>/` (each model's run: config, metrics, `rollout_curve.json`, report), `ablation/`, `data/`."
    )
    sections.append(("Files", files))
    metrics: dict[str, Any] = {}
    for r in rows:
        if r["status"] in ("completed", "reference"):
            metrics[f"mse/{r['name']}"] = r["mse"]
            if r.get("curve"):
                metrics[f"rollout_mse_h{len(r['curve'])}/{r['name']}"] = r["curve"][-1]
    metrics["models_completed"] = float(sum(1 for r in rows if r["kind"] == "model" and r["status"] == "completed"))
    metrics["models_failed"] = float(sum(1 for r in rows if r["kind"] == "model" and r["status"] != "completed"))
    metrics["train_wall_seconds"] = wall
    for a in ablation:
        if a["increase"] is not None:
            metrics[f"ablation_increase/{a['withheld']}"] = a["increase"]
    parts = ["# continuous-dynamics: five dynamics models compared", ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body.rstrip(), ""]
    plots = sorted(ctx.plots_dir.glob("*.png"))
    if plots:
        parts += ["## Plots", "", *(f"![{p.stem}](plots/{p.name})" for p in plots), ""]
    atomic_write_text(ctx.out_dir / "report.md", "\n".join(parts))
    return metrics
