"""Ablation runner: plain vs +HER vs +PER vs +n-step vs +curriculum over several seeds.

Every (variant, seed) is a full ``sb3`` training run in ``<out>/<variant>/seed<k>/`` (a normal run
directory: checkpoints, stats, TensorBoard). :func:`analyse` then computes, per variant, the
final and best success rates, the environment steps needed to reach ``threshold`` success (the
sample-efficiency measure of the PER and n-step papers; ``inf`` when never reached), learning
curves with bootstrap confidence bands, and statistical tests against the baseline variant.
``report.md``, ``ablation.json`` and ``plots/learning_curves.png`` summarise it.

Registered as the ``ablation`` pipeline (``mlcore run --plugin nav-rl --pipeline ablation``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlcore.config import in_range
from mlcore.pipelines import Pipeline
from mlcore.runs import RunContext
from mlcore_nav_rl.data import NavDataConfig
from mlcore_nav_rl.trainer import SB3TrainerConfig

log = logging.getLogger(__name__)


def _default_variants() -> dict[str, dict[str, Any]]:
    return {
        "plain": {},
        "her": {"her": True},
        "per": {"per": True},
        "n_step": {"n_step": 3},
        "curriculum": {"curriculum": True},
    }


@attrs.define
class AblationConfig:
    """Variants (model-config overrides), seeds, training budget and the success threshold."""

    dataset: NavDataConfig = attrs.field(factory=NavDataConfig)
    algorithm: str = attrs.field(default="sac")
    #: model-config values shared by every variant
    base_model: dict[str, Any] = attrs.field(factory=dict)
    variants: dict[str, dict[str, Any]] = attrs.field(factory=_default_variants)
    #: per-variant dataset overrides (e.g. ``{"her": {"goal_conditioned": true}}``)
    variant_datasets: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    seeds: list[int] = attrs.field(factory=lambda: [0, 1, 2])
    trainer: SB3TrainerConfig = attrs.field(factory=SB3TrainerConfig)
    threshold: float = attrs.field(default=0.6, validator=in_range(0.0, 1.0))
    baseline: str = "plain"

    def __attrs_post_init__(self) -> None:
        if not self.variants:
            raise ValueError("variants must not be empty")
        if self.baseline not in self.variants:
            raise ValueError(f"baseline={self.baseline!r} is not one of the variants ({', '.join(self.variants)})")
        if not self.seeds:
            raise ValueError("seeds must not be empty")


def steps_to_threshold(history: list[dict[str, Any]], threshold: float, key: str = "success_rate") -> float:
    """Environment steps at the first evaluation with ``key >= threshold`` (``inf`` if never)."""
    for h in history:
        if h[key] >= threshold:
            return float(h["timesteps"])
    return math.inf


def analyse(runs: dict[str, list[list[dict[str, Any]]]], *, threshold: float, baseline: str) -> dict[str, Any]:
    """Summaries, learning curves (mean + 95 % bootstrap band) and tests vs ``baseline``."""
    from mlcore_nav_rl.evaluation.stats import bootstrap_ci, compare_samples

    summary: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for name, histories in runs.items():
        final = [h[-1]["success_rate"] for h in histories]
        best = [max(r["success_rate"] for r in h) for h in histories]
        steps = [steps_to_threshold(h, threshold) for h in histories]
        auc = [float(np.mean([r["success_rate"] for r in h])) for h in histories]
        summary[name] = {
            "final_success": final,
            "final_success_mean": float(np.mean(final)),
            "best_success_mean": float(np.mean(best)),
            "steps_to_threshold": steps,
            "median_steps_to_threshold": float(np.median(steps)),
            "reached": int(sum(math.isfinite(s) for s in steps)),
            "auc_success": auc,
            "final_return_mean": float(np.mean([h[-1]["return_mean"] for h in histories])),
            "final_collision_mean": float(np.mean([h[-1]["collision_rate"] for h in histories])),
        }
        n = min(len(h) for h in histories)
        xs = [histories[0][i]["timesteps"] for i in range(n)]
        mean, lo, hi = [], [], []
        for i in range(n):
            vals = [h[i]["success_rate"] for h in histories]
            mean.append(float(np.mean(vals)))
            a, b = bootstrap_ci(vals, n_resamples=500)
            lo.append(a)
            hi.append(b)
        curves[name] = {"timesteps": xs, "mean": mean, "low": lo, "high": hi}
    tests = []
    for name in runs:
        if name == baseline:
            continue
        row = compare_samples(summary[name]["auc_success"], summary[baseline]["auc_success"])
        tests.append({"a": name, "b": baseline, "measure": "mean success over training (AUC)", **row})
    return {"summary": summary, "curves": curves, "tests": tests, "threshold": threshold, "baseline": baseline}


def plot_curves(curves: dict[str, Any], path: Path, *, threshold: float | None = None) -> Path:
    """Success-rate learning curves with confidence bands, one line per variant."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mlcore.io import atomic_write

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, c in curves.items():
        ax.plot(c["timesteps"], c["mean"], marker="o", ms=3, label=name)
        ax.fill_between(c["timesteps"], c["low"], c["high"], alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, ls="--", color="grey", lw=1, label=f"threshold {threshold:g}")
    ax.set(xlabel="environment steps", ylabel="evaluation success rate", ylim=(-0.05, 1.05))
    ax.grid(True, alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def render_report(result: dict[str, Any], title: str = "nav-rl ablation") -> str:
    """``report.md`` body: per-variant table, tests vs the baseline, the plot."""
    from mlcore_nav_rl.evaluation.stats import comparison_table

    thr = result["threshold"]
    lines = [f"# {title}", "", f"Success threshold for sample efficiency: {thr:g}.", ""]
    lines += [
        "| variant | final success (mean) | best success | median steps to threshold | seeds reaching it |"
        " final return | final collisions |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        med = s["median_steps_to_threshold"]
        lines.append(
            f"| {name} | {s['final_success_mean']:.2f} | {s['best_success_mean']:.2f} | "
            f"{'never' if not math.isfinite(med) else int(med)} | {s['reached']}/{len(s['final_success'])} | "
            f"{s['final_return_mean']:.2f} | {s['final_collision_mean']:.2f} |"
        )
    if result["tests"]:
        lines += [
            "",
            "## Against the baseline (mean success over training, per seed)",
            "",
            comparison_table(result["tests"]),
        ]
    lines += ["", "![learning curves](plots/learning_curves.png)", ""]
    return "\n".join(lines)


def completed_history(run_dir: Path, seed: int, total_timesteps: int) -> list[dict[str, Any]] | None:
    """The evaluation history of a finished run in ``run_dir`` (same seed and budget), else ``None``."""
    import json

    stats = run_dir / "training_stats.json"
    if not stats.is_file():
        return None
    try:
        d = json.loads(stats.read_text())
    except (OSError, ValueError):
        return None
    if d.get("stopped_reason") != "completed" or d.get("seed") != seed or d.get("timesteps") != total_timesteps:
        return None
    return list(d.get("history") or []) or None


def run_ablation(
    config: AblationConfig,
    out_dir: str | Path,
    *,
    device: Any = "cpu",
    progress: bool = False,
    variants: list[str] | None = None,
    reuse_completed: bool = False,
) -> dict[str, Any]:
    """Train every (variant, seed), then analyse and write the report; returns the analysis.

    ``variants`` trains only those (the others must already be finished runs in ``out_dir`` when
    ``reuse_completed``, or are left out); ``reuse_completed`` takes the history of a run that
    already finished with the same seed and budget instead of training it again, so the runs of
    one ablation can be spread over several processes and analysed together afterwards.
    """
    from mlcore.io import atomic_write_json, atomic_write_text
    from mlcore.registry import get_registry
    from mlcore.seeding import seed_everything
    from mlcore.training.checkpoint import make_meta
    from mlcore_nav_rl.data import NavData
    from mlcore_nav_rl.trainer import SB3Trainer

    out = Path(out_dir)
    spec = get_registry().get("model", config.algorithm)
    # every variant's config is checked before the first run trains, so a typo does not wait for it
    model_cfgs = {
        name: spec.make_config({**config.base_model, **overrides}, where=f"variants.{name}.")
        for name, overrides in config.variants.items()
    }
    runs: dict[str, list[list[dict[str, Any]]]] = {}
    for name, model_cfg in model_cfgs.items():
        runs[name] = []
        for seed in config.seeds:
            done = completed_history(out / name / f"seed{seed}", seed, config.trainer.total_timesteps)
            if reuse_completed and done is not None:
                runs[name].append(done)
                continue
            if variants is not None and name not in variants:
                continue
            seed_everything(seed)  # the initial weights depend on the seed only, not on the runs before
            model = spec.build(model_cfg)
            data_cfg = attrs.evolve(config.dataset, **config.variant_datasets.get(name, {}))
            data_cfg = attrs.evolve(
                data_cfg,
                goal_conditioned=model.goal_conditioned,
                env=attrs.evolve(data_cfg.env, action_type=model.action_type),
            )
            data = NavData(data_cfg)
            meta = make_meta(
                plugin="nav-rl",
                components={
                    "dataset": ("nav", data_cfg),
                    "model": (config.algorithm, model_cfg),
                    "evaluator": ("nav", None),
                },
                pipeline="nav-rl/ablation",
                seed=seed,
                variant=name,
            )
            log.info("ablation: %s seed %d", name, seed)
            trainer = SB3Trainer(config.trainer, device=device, seed=seed, progress=progress)
            result = trainer.fit(model, data, None, run_dir=out / name / f"seed{seed}", meta=meta)
            runs[name].append(result.history)
    runs = {name: histories for name, histories in runs.items() if len(histories) == len(config.seeds)}
    if config.baseline not in runs:
        return {"summary": {}, "curves": {}, "tests": [], "threshold": config.threshold, "baseline": config.baseline}
    analysis = analyse(runs, threshold=config.threshold, baseline=config.baseline)
    plot_curves(analysis["curves"], out / "plots" / "learning_curves.png", threshold=config.threshold)
    atomic_write_json(out / "ablation.json", analysis)
    atomic_write_text(out / "report.md", render_report(analysis))
    return analysis


class AblationPipeline(Pipeline):
    """``mlcore run --plugin nav-rl --pipeline ablation``."""

    config: AblationConfig

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Run the ablation into the run directory; headline: final success of each variant."""
        analysis = run_ablation(self.config, ctx.out_dir, device=ctx.device, progress=ctx.progress)
        out: dict[str, Any] = {}
        for name, s in analysis["summary"].items():
            out[f"{name}_final_success"] = s["final_success_mean"]
            med = s["median_steps_to_threshold"]
            out[f"{name}_median_steps_to_threshold"] = med if math.isfinite(med) else -1.0
        return out
