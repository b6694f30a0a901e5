"""The ``sine`` pipeline, declared as a recipe: generate -> train -> evaluate -> report.md.

Run it with ``mlcore run --plugin sine [--profile quick|full] [--set trainer.epochs=20]``.
The core builds the parts, checks one batch, trains (resuming from ``last.pt``), evaluates and
writes ``report.md``; this module only adds what is particular to sine windows: the data file
kept with the run, a persistence baseline and a plot of the predictions.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from mlcore.config import ComponentConfig, component_field
from mlcore.data import DataModule
from mlcore.evaluation import predict
from mlcore.evaluation.regression import RegressionEvaluatorConfig
from mlcore.pipelines import Parts, Recipe, RecipePipeline, RunContext
from mlcore.training import TrainerConfig
from mlcore_sine.data import FILE_NAME, SineDataConfig
from mlcore_sine.model import SineMLPConfig


@attrs.define
class SinePipelineConfig:
    """Config of the ``sine`` pipeline: one table per part.

    Attributes:
        dataset: the windows (``[dataset]``; the old name ``[data]`` is still read). Its
            ``window`` also sizes the model.
        model: the MLP (``[model]``).
        loss: any registered loss (``mlcore list loss``): ``loss = "huber"`` or a ``[loss]`` table.
        trainer: the generic trainer's settings (``[trainer]``).
        evaluator: the regression evaluator's settings (``[evaluator]``).
    """

    dataset: SineDataConfig = attrs.field(factory=SineDataConfig, metadata={"mlcore_old_names": ("data",)})
    model: SineMLPConfig = attrs.field(factory=SineMLPConfig)
    loss: ComponentConfig = component_field("loss", "mse")
    trainer: TrainerConfig = attrs.field(factory=TrainerConfig)
    evaluator: RegressionEvaluatorConfig = attrs.field(factory=RegressionEvaluatorConfig)


class SinePipeline(RecipePipeline[SinePipelineConfig]):
    """The recipe, plus the data file, a baseline and a plot (see the module docstring)."""

    recipe = Recipe(
        dataset="sine",
        model="sine_mlp",
        evaluator="regression",
        title="sine: next-value prediction on noisy sine windows",
    )

    def save_data(self, ctx: RunContext, config: SinePipelineConfig, data: DataModule) -> SinePipelineConfig:
        """Keep the raw windows with the run (``data/sine_windows.npz``); the checkpoint names the file."""
        path = ctx.path("data", FILE_NAME)
        if not path.exists():
            data.generate(path.parent)
        return attrs.evolve(config, dataset=attrs.evolve(config.dataset, path=str(path)))

    def extra_metrics(self, ctx: RunContext, parts: Parts[SinePipelineConfig]) -> dict[str, float]:
        """The persistence baseline's MSE, and ``plots/predictions.png``."""
        pred, true = predict(parts.model, parts.data.eval_set(), batch_size=512, device=ctx.device)
        _plot_predictions(pred[:200, 0], true[:200, 0], ctx)
        inputs = torch.stack([x for x, _ in parts.data.eval_set()])  # type: ignore[attr-defined]
        return {"baseline_mse": float(((inputs[:, -1:] - true) ** 2).mean())}

    def report_sections(
        self, ctx: RunContext, parts: Parts[SinePipelineConfig], metrics: dict[str, float]
    ) -> list[tuple[str, str]]:
        """How the model compares with "next value = last value"."""
        cfg = parts.config
        ratio = metrics["mse"] / metrics["baseline_mse"] if metrics["baseline_mse"] > 0 else float("nan")
        return [
            (
                "Baseline",
                f"{cfg.dataset.num_samples} windows of {cfg.dataset.window} values (noise {cfg.dataset.noise}); "
                f"MLP {cfg.model.layers}x{cfg.model.hidden} ({cfg.model.activation}), loss `{cfg.loss.name}`.\n\n"
                f"persistence baseline MSE {metrics['baseline_mse']:.5f}; MSE / baseline {ratio:.3f}.",
            )
        ]


def _plot_predictions(pred: Any, true: Any, ctx: RunContext) -> None:
    """Scatter of predicted vs true next values (standardised), saved as ``plots/predictions.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(true.numpy(), pred.numpy(), s=8, alpha=0.6)
    lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set_xlabel("true next value (standardised)")
    ax.set_ylabel("predicted")
    ax.set_title("sine_mlp on held-out windows")
    fig.tight_layout()
    fig.savefig(ctx.plots_dir / "predictions.png", dpi=100)
    plt.close(fig)
