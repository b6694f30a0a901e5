"""Entry point of the trc-control plugin: component specs only (no torch, numpy or scipy import here)."""

from __future__ import annotations

from mlcore.components import ComponentSpec
from mlcore.hookspecs import hookimpl

MLCORE_API = ">=1.0,<2"

#: ``mlcore run --plugin trc-control --profile quick|full``: overrides of the pipeline config.
PROFILES = {
    "quick": {
        "dataset": {"num_samples": 2000, "test_num_samples": 500},
        "model": {"size": "small"},
        "trainer": {"epochs": 8, "batch_size": 64, "lr": 1e-3},
        "comparison": {"generalisation_samples": 100},
    },
    "full": {
        "dataset": {"num_samples": 10000, "test_num_samples": 1000},
        "model": {"size": "medium"},
        "trainer": {"epochs": 100, "batch_size": 64, "lr": 1e-3},
    },
}


@hookimpl
def register_datasets() -> list[ComponentSpec]:
    """Finite-horizon LQR (and nonlinear) problems with optimal expert controls."""
    return [
        ComponentSpec(
            "lqr",
            "mlcore_trc_control.data:LQRData",
            "mlcore_trc_control.data:LQRDataConfig",
            summary="Finite-horizon optimal-control problems (double integrator, planar, cart-pole, custom; "
            "nonlinear pendulum, Van der Pol, rocket landing) with expert controls",
        )
    ]


@hookimpl
def register_models() -> list[ComponentSpec]:
    """Tiny Recursive Control."""
    return [
        ComponentSpec(
            "trc",
            "mlcore_trc_control.models.trc:TinyRecursiveControl",
            "mlcore_trc_control.models.config:TRCConfig",
            summary="Tiny Recursive Control: one shared tiny net refines a control sequence over outer/inner cycles",
            extras={"dataset": "lqr"},
        )
    ]


@hookimpl
def register_evaluators() -> list[ComponentSpec]:
    """Open-loop rollout evaluation against LQR."""
    return [
        ComponentSpec(
            "trc",
            "mlcore_trc_control.evaluation:TRCEvaluator",
            "mlcore_trc_control.evaluation:TRCEvaluatorConfig",
            summary="Rollout terminal error, success rate, error/cost gap to LQR, inference time",
            extras={"model": "trc", "dataset": "lqr"},
        )
    ]


@hookimpl
def register_pipelines() -> list[ComponentSpec]:
    """generate -> train -> evaluate -> compare -> export -> report (a recipe: mlcore.pipelines.RecipePipeline)."""
    return [
        ComponentSpec(
            "trc",
            "mlcore_trc_control.pipeline:TRCPipeline",
            "mlcore_trc_control.pipeline:TRCPipelineConfig",
            summary="generate LQR data -> train TRC -> evaluate -> compare -> ONNX export -> report",
            profiles=PROFILES,
        )
    ]
