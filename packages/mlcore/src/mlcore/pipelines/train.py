"""The generic train pipeline behind ``mlcore train``: components named in config sections.

Example config::

    [run]
    seed = 0

    [dataset]
    name = "sine"
    num_samples = 2000

    [model]
    name = "mlp"
    hidden = 64

    [loss]
    name = "mse"

    [trainer]
    name = "supervised"
    epochs = 20

    [evaluator]
    name = "regression"
"""

from __future__ import annotations

from typing import Any

import attrs

from mlcore.config import ComponentConfig, component_field
from mlcore.errors import ConfigError
from mlcore.pipelines import Pipeline
from mlcore.runs import RunContext


@attrs.define
class TrainPipelineConfig:
    """Sections naming the dataset, model, loss, trainer and (optional) evaluator to use."""

    dataset: ComponentConfig | None = component_field("dataset")
    model: ComponentConfig | None = component_field("model")
    loss: ComponentConfig = component_field("loss", "mse")
    trainer: ComponentConfig = component_field("trainer", "supervised")
    evaluator: ComponentConfig | None = component_field("evaluator")


class TrainPipeline(Pipeline):
    """dataset -> model -> loss -> trainer -> evaluator, writing a standard run directory."""

    config: TrainPipelineConfig

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Train (resuming from ``last.pt`` when present) and evaluate; returns the metrics."""
        from mlcore.registry import get_registry
        from mlcore.report import write_report
        from mlcore.training.checkpoint import make_meta

        cfg = self.config
        for section in ("dataset", "model"):
            if getattr(cfg, section) is None:
                raise ConfigError(f"[{section}] is required: add a table with name = ... (see `mlcore list {section}`)")
        assert cfg.dataset is not None and cfg.model is not None
        reg = get_registry()
        data = reg.get("dataset", cfg.dataset.name).build(cfg.dataset.config).prepare()
        model = reg.get("model", cfg.model.name).build(cfg.model.config)
        loss = reg.get("loss", cfg.loss.name).build(cfg.loss.config)
        trainer = reg.get("trainer", cfg.trainer.name).build(
            cfg.trainer.config, device=ctx.device, seed=ctx.seed, progress=ctx.progress
        )
        components: dict[str, tuple[str, Any]] = {
            "dataset": (cfg.dataset.name, cfg.dataset.config),
            "model": (cfg.model.name, cfg.model.config),
            "loss": (cfg.loss.name, cfg.loss.config),
        }
        if cfg.evaluator is not None:
            components["evaluator"] = (cfg.evaluator.name, cfg.evaluator.config)
        plugin = reg.get("model", cfg.model.name).plugin
        meta = make_meta(plugin=plugin, components=components, data=data, pipeline="mlcore/train")
        result = trainer.fit(model, data, loss, run_dir=ctx.out_dir, meta=meta)
        metrics: dict[str, Any] = {"best_epoch": result.best_epoch, "best_metric": result.best_metric}
        if cfg.evaluator is not None:
            evaluator = reg.get("evaluator", cfg.evaluator.name).build(cfg.evaluator.config)
            metrics.update(evaluator.evaluate(model, data, device=ctx.device, out_dir=ctx.out_dir))
        write_report(ctx.out_dir, title=f"Training run: {cfg.model.name} on {cfg.dataset.name}", metrics=metrics)
        return metrics
