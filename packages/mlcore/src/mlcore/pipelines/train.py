"""The generic train pipeline behind ``mlcore train``: every part named in the config.

It is a :class:`~mlcore.pipelines.RecipePipeline` whose recipe names nothing: each table
says which registered component to use. Example config::

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

import attrs

from mlcore.config import ComponentConfig, component_field
from mlcore.pipelines.recipe import Recipe, RecipePipeline


@attrs.define
class TrainPipelineConfig:
    """Tables naming the dataset, model, loss, trainer and (optional) evaluator to use."""

    dataset: ComponentConfig | None = component_field("dataset")
    model: ComponentConfig | None = component_field("model")
    loss: ComponentConfig = component_field("loss", "mse")
    trainer: ComponentConfig = component_field("trainer", "supervised")
    evaluator: ComponentConfig | None = component_field("evaluator")


class TrainPipeline(RecipePipeline[TrainPipelineConfig]):
    """dataset -> model -> loss -> trainer -> evaluator -> report, all named by the config."""

    recipe = Recipe(loss=None)
