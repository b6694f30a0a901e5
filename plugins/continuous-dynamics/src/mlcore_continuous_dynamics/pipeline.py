"""The ``train-one`` pipeline, a recipe: one dynamics model on vehicle episodes -> evaluate -> report.

``mlcore run --plugin continuous-dynamics --pipeline train-one --set model.name=neural_ode``.
The ``compare`` pipeline runs it once per model (each in its own process when the core can).
"""

from __future__ import annotations

from typing import Any, cast

import attrs

from mlcore.config import ComponentConfig, component_field
from mlcore.data import DataModule
from mlcore.pipelines import Parts, Recipe, RecipePipeline, RunContext
from mlcore.training import TrainerConfig
from mlcore_continuous_dynamics.configs import DynamicsEvaluatorConfig, VehicleEpisodesConfig

__all__ = ["TrainOneConfig", "TrainOnePipeline", "standard_trainer"]


def standard_trainer() -> TrainerConfig:
    """The plan's standard settings: 50 epochs, batch 32, lr 1e-3, patience 15 (no TensorBoard, no histograms)."""
    return TrainerConfig(epochs=50, batch_size=32, lr=1e-3, patience=15, trackers=[], callbacks=[])


@attrs.define
class TrainOneConfig:
    """Config of ``train-one``.

    Attributes:
        dataset: the ``vehicle-episodes`` data (``dataset.path`` reads generated files).
        model: any of the five (``name = "gru_dynamics"`` ...); sizes are set from the data.
        loss: the one-step loss (``vae_rnn_hybrid`` uses its own reconstruction + KL + prediction loss).
        trainer: :class:`mlcore.training.TrainerConfig` (the standard settings by default).
        evaluator: the ``dynamics`` evaluator (one-step, rollout curve, permutation importance).
    """

    dataset: VehicleEpisodesConfig = attrs.field(factory=VehicleEpisodesConfig)
    model: ComponentConfig = component_field("model", "gru_dynamics")
    loss: ComponentConfig = component_field("loss", "mse")
    trainer: TrainerConfig = attrs.field(factory=standard_trainer)
    evaluator: DynamicsEvaluatorConfig = attrs.field(factory=DynamicsEvaluatorConfig)


class TrainOnePipeline(RecipePipeline[TrainOneConfig]):
    """The ``vehicle-episodes`` / any model / ``mse`` / ``dynamics`` recipe."""

    recipe = Recipe(dataset="vehicle-episodes", evaluator="dynamics", title="continuous-dynamics: one model")

    def prepare_model(self, model: Any, data: DataModule) -> None:
        """The nominal sample interval (the models' dt features are relative to it)."""
        model.dt_ref.fill_(cast(Any, data).nominal_dt)

    def extra_metrics(self, ctx: RunContext, parts: Parts[TrainOneConfig]) -> dict[str, float]:
        """Parameter count and the mean wall time of one training step."""
        params = sum(p.numel() for p in parts.model.parameters())
        out = {"params": float(params)}
        fit = parts.fit
        if fit is not None and fit.epochs_run:
            batches = -(-len(parts.data.train_set()) // parts.config.trainer.batch_size)  # type: ignore[arg-type]
            out["seconds_per_epoch"] = fit.train_seconds / fit.epochs_run
            out["train_step_ms"] = 1000.0 * fit.train_seconds / (fit.epochs_run * max(1, batches))
        return out

    def report_sections(
        self, ctx: RunContext, parts: Parts[TrainOneConfig], metrics: dict[str, float]
    ) -> list[tuple[str, str]]:
        name = parts.components["model"][0]
        text = (
            f"`{name}` predicts the next normalised 12-D state; one-step test MSE {metrics['mse']:.3g} against "
            f"{metrics['persistence_mse']:.3g} for persistence (next state = current) and "
            f"{metrics['true_model_mse']:.3g} for the simulator's own equations with the weather known. "
            f"Rolled out on its own predictions, its error after {parts.config.evaluator.horizon} steps is "
            f"{metrics['rollout_mse/last']:.3g} (`rollout_curve.json`)."
        )
        return [("Result", text)]
