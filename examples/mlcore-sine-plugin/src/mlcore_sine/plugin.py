"""Entry-point module of the ``sine`` plugin: hook implementations returning component specs.

Only names and import paths live here, so ``mlcore plugins`` / ``mlcore list`` never import torch.
"""

from __future__ import annotations

from mlcore import ComponentSpec, hookimpl

#: The range of the mlcore plugin API this plugin was written for.
MLCORE_API = ">=1.0,<2"


@hookimpl
def register_datasets() -> list[ComponentSpec]:
    """The noisy sine-window dataset."""
    return [
        ComponentSpec(
            name="sine",
            target="mlcore_sine.data:SineWindows",
            config="mlcore_sine.data:SineDataConfig",
            summary="Noisy sine windows: predict the next value from the last k values",
        )
    ]


@hookimpl
def register_models() -> list[ComponentSpec]:
    """The next-value MLP."""
    return [
        ComponentSpec(
            name="sine_mlp",
            target="mlcore_sine.model:SineMLP",
            config="mlcore_sine.model:SineMLPConfig",
            summary="Small MLP: last k values -> next value",
            extras={"dataset": "sine", "loss": "mse"},
        )
    ]


@hookimpl
def register_pipelines() -> list[ComponentSpec]:
    """The end-to-end recipe behind ``mlcore run --plugin sine``."""
    return [
        ComponentSpec(
            name="sine",
            target="mlcore_sine.pipeline:SinePipeline",
            config="mlcore_sine.pipeline:SinePipelineConfig",
            summary="generate -> train (mlcore Trainer) -> evaluate (regression) -> report.md, as a recipe",
            profiles={
                "quick": {
                    "dataset": {"num_samples": 1024},
                    "model": {"hidden": 32},
                    "trainer": {"epochs": 8, "batch_size": 64, "lr": 3e-3},
                },
                "full": {
                    "dataset": {"num_samples": 20000},
                    "model": {"hidden": 128, "layers": 3},
                    "trainer": {"epochs": 60, "batch_size": 128, "lr": 1e-3, "patience": 10},
                },
            },
        )
    ]
