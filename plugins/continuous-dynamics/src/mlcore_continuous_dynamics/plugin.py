"""Entry point of the continuous-dynamics plugin: component specs only (no torch, numpy or torchdiffeq here)."""

from __future__ import annotations

from mlcore.components import ComponentSpec
from mlcore.hookspecs import hookimpl

MLCORE_API = ">=1.0,<2"

_PKG = "mlcore_continuous_dynamics"

#: ``quick``: small data and short runs (minutes on a laptop CPU); ``medium``: 60 episodes, 30 % of
#: the plan's epochs; ``full``: the plan's settings (200 episodes, standard config + per-model adjustments).
QUICK_DATA = {"episodes": 30, "episode_seconds": 12.0, "stride": 3, "horizon": 50}
PROFILES = {
    "quick": {
        "dataset": QUICK_DATA,
        "trainer": {"batch_size": 64, "patience": 5},
        "epochs_scale": 0.15,
        "evaluator": {"max_rollout_windows": 128},
    },
    "medium": {
        "dataset": {"episodes": 60, "episode_seconds": 15.0, "stride": 2, "horizon": 50},
        "trainer": {"patience": 8},
        "epochs_scale": 0.3,
        "evaluator": {"max_rollout_windows": 256},
    },
    "full": {},
}
TRAIN_ONE_PROFILES = {
    "quick": {
        "dataset": QUICK_DATA,
        "trainer": {"epochs": 6, "batch_size": 64},
        "evaluator": {"max_rollout_windows": 128},
    },
    "full": {},
}


def _model(name: str, target: str, config: str, summary: str) -> ComponentSpec:
    return ComponentSpec(
        name,
        f"{_PKG}.models.{target}",
        f"{_PKG}.configs:{config}",
        summary=summary,
        extras={"dataset": "vehicle-episodes", "loss": "mse"},
    )


@hookimpl
def register_datasets() -> list[ComponentSpec]:
    """Simulated quadrotor episodes in weather."""
    return [
        ComponentSpec(
            "vehicle-episodes",
            f"{_PKG}.data:VehicleEpisodes",
            f"{_PKG}.configs:VehicleEpisodesConfig",
            summary="12-D quadrotor (RK4, 100 Hz) flying random waypoints in sampled weather; windows split by episode",
        )
    ]


@hookimpl
def register_models() -> list[ComponentSpec]:
    """The five dynamics models."""
    return [
        _model("linear_dynamics", "linear:LinearDynamics", "LinearConfig", "Linear state space x' = Ax + Bu + Cw + d"),
        _model("gru_dynamics", "recurrent:GRUDynamics", "GRUConfig", "GRU over the history window"),
        _model("lstm_predictor", "recurrent:LSTMPredictor", "LSTMConfig", "LSTM over the history window"),
        _model("neural_ode", "ode:NeuralODE", "NeuralODEConfig", "Neural ODE (torchdiffeq) between sample times"),
        _model(
            "vae_rnn_hybrid",
            "vae_rnn:VAERNNHybrid",
            "VAERNNConfig",
            "VAE latent space rolled forward by a GRU (recon + beta KL + prediction)",
        ),
    ]


@hookimpl
def register_evaluators() -> list[ComponentSpec]:
    """One-step and rollout errors with references."""
    return [
        ComponentSpec(
            "dynamics",
            f"{_PKG}.evaluation:DynamicsEvaluator",
            f"{_PKG}.configs:DynamicsEvaluatorConfig",
            summary="One-step and H-step rollout MSE, per state group, references, weather permutation importance",
            extras={"model": "gru_dynamics", "dataset": "vehicle-episodes"},
        )
    ]


@hookimpl
def register_pipelines() -> list[ComponentSpec]:
    """dynamics (default): all five models + references + ablation; train-one: one model."""
    return [
        ComponentSpec(
            "dynamics",
            f"{_PKG}.compare:ComparePipeline",
            f"{_PKG}.compare:CompareConfig",
            summary="simulate episodes -> train the five models (fast ones in parallel) -> references, ablation",
            profiles=PROFILES,
        ),
        ComponentSpec(
            "train-one",
            f"{_PKG}.pipeline:TrainOnePipeline",
            f"{_PKG}.pipeline:TrainOneConfig",
            summary="train one dynamics model (model.name=...) -> rollout evaluation -> report",
            profiles=TRAIN_ONE_PROFILES,
        ),
    ]
