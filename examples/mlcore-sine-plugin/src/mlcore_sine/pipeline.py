"""The ``sine`` pipeline: generate -> train -> evaluate -> report.md.

Run it with ``mlcore run --plugin sine [--profile quick|full] [--set trainer.epochs=20]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import torch

import mlcore
from mlcore.errors import ConfigError
from mlcore.evaluation import predict
from mlcore.evaluation.regression import RegressionEvaluator, RegressionEvaluatorConfig
from mlcore.pipelines import Pipeline
from mlcore.runs import RunContext
from mlcore.training import Trainer, TrainerConfig
from mlcore_sine.data import SineDataConfig, SineWindows
from mlcore_sine.model import SineMLP, SineMLPConfig

log = logging.getLogger(__name__)


@attrs.define
class SinePipelineConfig:
    """Config of the ``sine`` pipeline: one table per stage.

    Attributes:
        data: the dataset (``[data]``).
        model: the MLP (``[model]``); ``model.window`` must equal ``data.window``.
        loss: a registered loss name (``mlcore list loss``), e.g. ``mse``, ``huber``, ``hybrid``.
        trainer: the generic trainer's settings (``[trainer]``).
        evaluator: the regression evaluator's settings (``[evaluator]``).
    """

    data: SineDataConfig = attrs.field(factory=SineDataConfig)
    model: SineMLPConfig = attrs.field(factory=SineMLPConfig)
    loss: str = "mse"
    trainer: TrainerConfig = attrs.field(factory=TrainerConfig)
    evaluator: RegressionEvaluatorConfig = attrs.field(factory=RegressionEvaluatorConfig)


class SinePipeline(Pipeline):
    """Generate the windows into the run directory, train the MLP, score it, write ``report.md``."""

    config: SinePipelineConfig

    def __init__(self, config: SinePipelineConfig | None = None) -> None:
        super().__init__(config or SinePipelineConfig())

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Run every stage in ``ctx.out_dir``; returns the test metrics and training figures."""
        from mlcore.training.checkpoint import make_meta

        cfg = self.config
        if cfg.model.window != cfg.data.window:
            raise ConfigError(f"model.window={cfg.model.window} must equal data.window={cfg.data.window}")

        # 1. generate: the raw windows are kept with the run; training reads them back from the file
        files = SineWindows(cfg.data).generate(ctx.path("data"))
        data_cfg = attrs.evolve(cfg.data, path=str(files[0]))
        data = SineWindows(data_cfg)
        data.prepare()
        log.info("generated %d windows into %s", data_cfg.num_samples, files[0])

        # 2. train with the generic trainer (checkpoints, curves, TensorBoard, resume)
        model = SineMLP(cfg.model)
        loss = mlcore.build("loss", cfg.loss)
        trainer = Trainer(cfg.trainer, device=ctx.device, seed=ctx.seed, progress=ctx.progress)
        meta = make_meta(
            plugin="sine",
            components={
                "dataset": ("sine", data_cfg),
                "model": ("sine_mlp", cfg.model),
                "loss": (cfg.loss, None),
                "evaluator": ("regression", cfg.evaluator),
            },
            data=data,
            pipeline="sine",
            seed=ctx.seed,
        )
        fit = trainer.fit(model, data, loss, run_dir=ctx.out_dir, meta=meta)

        # 3. evaluate the best weights on the held-out split (writes metrics.json)
        metrics = RegressionEvaluator(cfg.evaluator).evaluate(model, data, device=ctx.device, out_dir=ctx.out_dir)
        baseline = _persistence_mse(data)
        plot = _plot_predictions(model, data, ctx)

        # 4. report
        results = {
            **metrics,
            "baseline_mse": baseline,
            "best_epoch": float(fit.best_epoch),
            "epochs_run": float(fit.epochs_run),
            "train_seconds": float(fit.train_seconds),
        }
        ctx.write_text("report.md", _report(ctx, cfg, results, fit.stopped_reason, plot))
        return results


def _persistence_mse(data: SineWindows) -> float:
    """MSE of the naive forecast "next value = last value" on the evaluation split (same scaling)."""
    split = data.eval_set()
    x = torch.stack([split[i][0] for i in range(len(split))])  # type: ignore[arg-type]
    y = torch.stack([split[i][1] for i in range(len(split))])  # type: ignore[arg-type]
    return float(((x[:, -1:] - y) ** 2).mean())


def _plot_predictions(model: SineMLP, data: SineWindows, ctx: RunContext, n: int = 200) -> Path:
    """Scatter of predicted vs true next values on the evaluation split, saved under ``plots/``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred, true = predict(model, data.eval_set(), batch_size=512, device=ctx.device)
    pred, true = pred[:n, 0].numpy(), true[:n, 0].numpy()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(true, pred, s=8, alpha=0.6)
    lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set_xlabel("true next value (standardised)")
    ax.set_ylabel("predicted")
    ax.set_title("sine_mlp on held-out windows")
    fig.tight_layout()
    path = ctx.plots_dir / "predictions.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _report(ctx: RunContext, cfg: SinePipelineConfig, r: dict[str, Any], stopped: str, plot: Path) -> str:
    ratio = r["mse"] / r["baseline_mse"] if r["baseline_mse"] > 0 else float("nan")
    lines = [
        "# sine: next-value prediction on noisy sine windows",
        "",
        f"Profile `{ctx.profile}`, seed {ctx.seed}, device `{ctx.device}`.",
        f"{cfg.data.num_samples} windows of {cfg.data.window} values (noise {cfg.data.noise}); "
        f"MLP {cfg.model.layers}x{cfg.model.hidden} ({cfg.model.activation}), loss `{cfg.loss}`.",
        "",
        "| metric (held-out split) | value |",
        "| --- | --- |",
        f"| MSE | {r['mse']:.5f} |",
        f"| MAE | {r['mae']:.5f} |",
        f"| RMSE | {r['rmse']:.5f} |",
        f"| R² | {r['r2']:.4f} |",
        f"| persistence baseline MSE | {r['baseline_mse']:.5f} |",
        f"| MSE / baseline | {ratio:.3f} |",
        "",
        f"Training: {int(r['epochs_run'])} epochs ({stopped}), best epoch {int(r['best_epoch'])}, "
        f"{r['train_seconds']:.1f} s.",
        "",
        "![training curves](training_curves.png)",
        "",
        f"![predictions](plots/{plot.name})",
        "",
        "Files: `config.toml`, `metrics.json`, `training_stats.json`, `checkpoints/best.pt`, `data/`.",
        "",
    ]
    return "\n".join(lines)
