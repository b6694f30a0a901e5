"""Entry-point module of the ``printer-corrector`` plugin: hook implementations returning component specs.

Only names and import paths live here, so ``mlcore plugins`` / ``mlcore list`` never import torch.
"""

from __future__ import annotations

from mlcore import ComponentSpec, hookimpl

#: The range of the mlcore plugin API this plugin was written for.
MLCORE_API = ">=1.0,<2"


@hookimpl
def register_datasets() -> list[ComponentSpec]:
    """Simulated printer layers (G-code -> planner -> axis dynamics)."""
    return [
        ComponentSpec(
            name="printer_layers",
            target="mlcore_printer_corrector.data:PrinterData",
            config="mlcore_printer_corrector.data:PrinterDataConfig",
            summary="Windows of a 3D printer's reference trajectory -> its X/Y tracking error (simulated from G-code)",
        )
    ]


@hookimpl
def register_models() -> list[ComponentSpec]:
    """The LSTM error predictor."""
    return [
        ComponentSpec(
            name="realtime_corrector",
            target="mlcore_printer_corrector.model:RealtimeCorrector",
            config="mlcore_printer_corrector.model:RealtimeCorrectorConfig",
            summary="LSTM over a 0.5 s reference window -> the current X/Y tracking error",
            extras={"dataset": "printer_layers", "loss": "hybrid"},
        )
    ]


@hookimpl
def register_evaluators() -> list[ComponentSpec]:
    """Accuracy in mm/μm, latency against the real-time budget, plots."""
    return [
        ComponentSpec(
            name="tracking_error",
            target="mlcore_printer_corrector.evaluation:TrackingErrorEvaluator",
            config="mlcore_printer_corrector.evaluation:TrackingEvaluatorConfig",
            summary="MAE/RMSE/R² (mm, μm), percentiles, correlation, batch-1 latency vs the 1 ms budget, plots",
            extras={"model": "realtime_corrector"},
        )
    ]


@hookimpl
def register_pipelines() -> list[ComponentSpec]:
    """The end-to-end recipe behind ``mlcore run --plugin printer-corrector``."""
    return [
        ComponentSpec(
            name="printer-corrector",
            target="mlcore_printer_corrector.pipeline:PrinterPipeline",
            config="mlcore_printer_corrector.pipeline:PrinterPipelineConfig",
            summary="simulate -> train LSTM -> evaluate vs ARX -> export -> streaming -> compensation -> report",
            profiles={
                "quick": {
                    "dataset": {
                        "parts": ["bearing", "boat"],
                        "layers": "sampled:4",
                        "sequence_length": 30,
                        "stride": 3,
                        "slicing": {"layer_height": 0.6},
                    },
                    "model": {"hidden_size": 32, "num_layers": 1, "dropout": 0.0},
                    "trainer": {"epochs": 4, "patience": 0},
                    "evaluator": {"latency_repeats": 100},
                    "compare": {"streaming_samples": 300, "compensation_layers": 1},
                },
                "full": {
                    "dataset": {"layers": "sampled:12", "stride": 2},
                    "model": {"hidden_size": 96, "num_layers": 2},
                    "trainer": {"epochs": 60, "patience": 10},
                },
            },
        )
    ]
