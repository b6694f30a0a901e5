"""Built-in components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from mlcore.components import ComponentSpec
from mlcore.hookspecs import hookimpl

MLCORE_API = ">=1.0,<2"


@hookimpl
def register_losses() -> list[ComponentSpec]:
    """Generic regression and classification losses."""
    return [
        ComponentSpec("mse", "mlcore.losses:MSELoss", summary="Mean squared error"),
        ComponentSpec("mae", "mlcore.losses:MAELoss", summary="Mean absolute error (L1)"),
        ComponentSpec(
            "huber",
            "mlcore.losses:HuberLoss",
            "mlcore.builtin.configs:HuberConfig",
            summary="Huber loss (quadratic below delta, linear above)",
        ),
        ComponentSpec(
            "cross_entropy",
            "mlcore.losses:CrossEntropyLoss",
            "mlcore.builtin.configs:CrossEntropyConfig",
            summary="Cross-entropy on class logits, optional label smoothing",
        ),
        ComponentSpec(
            "hybrid",
            "mlcore.losses:HybridLoss",
            "mlcore.builtin.configs:HybridConfig",
            summary="ratio * MAE + (1 - ratio) * MSE",
        ),
    ]


@hookimpl
def register_trainers() -> list[ComponentSpec]:
    """The generic supervised trainer."""
    return [
        ComponentSpec(
            "supervised",
            "mlcore.training.trainer:Trainer",
            "mlcore.training.config:TrainerConfig",
            summary="Generic supervised loop: AMP, accumulation, clipping, schedulers, early stopping, resume",
        )
    ]


@hookimpl
def register_evaluators() -> list[ComponentSpec]:
    """Generic regression and classification evaluators."""
    return [
        ComponentSpec(
            "regression",
            "mlcore.evaluation.regression:RegressionEvaluator",
            "mlcore.evaluation.regression:RegressionEvaluatorConfig",
            summary="MSE, MAE, RMSE and R^2 on the evaluation split",
        ),
        ComponentSpec(
            "classification",
            "mlcore.evaluation.classification:ClassificationEvaluator",
            "mlcore.evaluation.classification:ClassificationEvaluatorConfig",
            summary="Accuracy, macro-F1 and cross-entropy on the evaluation split",
        ),
    ]


@hookimpl
def register_pipelines() -> list[ComponentSpec]:
    """The generic train pipeline behind ``mlcore train``."""
    return [
        ComponentSpec(
            "train",
            "mlcore.pipelines.train:TrainPipeline",
            "mlcore.pipelines.train:TrainPipelineConfig",
            summary="dataset -> model -> loss -> trainer -> evaluator, from [dataset]/[model]/... sections",
        )
    ]


@hookimpl
def register_trackers() -> list[ComponentSpec]:
    """Experiment trackers."""
    return [
        ComponentSpec(
            "tensorboard",
            "mlcore.training.tracking:TensorBoardTracker",
            summary="TensorBoard event files under <run>/tensorboard",
        ),
        ComponentSpec(
            "mlflow", "mlcore.training.tracking:MLflowTracker", summary="MLflow (needs `pip install mlflow`)"
        ),
        ComponentSpec(
            "wandb",
            "mlcore.training.tracking:WandbTracker",
            summary="Weights & Biases, online or offline (needs `pip install mlcore[wandb]`)",
        ),
    ]


@hookimpl
def register_callbacks() -> list[ComponentSpec]:
    """Training callbacks usable by name in ``trainer.callbacks``."""
    return [
        ComponentSpec(
            "grad_histograms",
            "mlcore.training.callbacks:GradientHistogramCallback",
            "mlcore.training.callbacks:GradHistogramsConfig",
            summary="Gradient-norm and weight histograms to the trackers (epoch 1 and every n-th)",
        ),
        ComponentSpec(
            "lr_warmup_log",
            "mlcore.training.callbacks:LearningRateLogger",
            summary="Log the learning rate of every parameter group each step",
        ),
        ComponentSpec(
            "inference_time",
            "mlcore.training.callbacks:InferenceTime",
            "mlcore.training.callbacks:InferenceTimeConfig",
            summary="Time the model's forward pass on example_input() each epoch (time/inference_ms)",
        ),
        ComponentSpec(
            "early_stopping",
            "mlcore.training.callbacks:EarlyStopping",
            "mlcore.training.callbacks:EarlyStoppingConfig",
            summary="Stop when a logged value has not improved for `patience` epochs",
        ),
        ComponentSpec(
            "notify",
            "mlcore.training.notify:NotifyCallback",
            "mlcore.training.notify:NotifyConfig",
            summary="Webhook (JSON POST) and/or e-mail when a run finishes or fails",
        ),
    ]
