"""Config classes of the plugin's components, kept apart from torch (``mlcore show`` imports them)."""

from __future__ import annotations

from typing import Any

import attrs

from mlcore.config import in_range, one_of, positive
from mlcore_continuous_dynamics.sim import WEATHER_FACTORS

__all__ = [
    "DynamicsEvaluatorConfig",
    "GRUConfig",
    "LSTMConfig",
    "LinearConfig",
    "NeuralODEConfig",
    "VAERNNConfig",
    "VehicleEpisodesConfig",
]


def _factors(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if not isinstance(value, list) or any(v not in WEATHER_FACTORS for v in value):
        allowed = ", ".join(WEATHER_FACTORS)
        raise ValueError(f"{attribute.name}={value!r} is not allowed (a list of: {allowed})")


@attrs.define
class VehicleEpisodesConfig:
    """Config of the ``vehicle-episodes`` dataset.

    Attributes:
        episodes: number of episodes (one weather draw each); ``--episodes`` of ``mlcore data generate``.
        episode_seconds: flight time per episode.
        sample_rate: samples (and controller actions) per second; the interval is integrated with
            ``substeps`` RK4 steps (20 Hz x 5 = 100 Hz physics by default).
        substeps: RK4 steps per sample interval.
        time_jitter: relative jitter of each sample interval (0 = regular; 0.3 = +-30 %, irregular time stamps).
        sequence_length: history window a model sees (states, actions, weather).
        horizon: steps of the multi-step targets (rollout evaluation).
        stride: step between the starts of consecutive windows of an episode.
        val_fraction, test_fraction: shares of the episodes (split by episode, never by window).
        max_wind, max_gust: ranges of the sampled mean wind speed and gust strength (m/s).
        withhold: weather factors hidden from the models (set to their training mean): the ablation.
        path: a directory written by ``mlcore data generate vehicle-episodes``; empty = simulate in memory.
        seed: the data's own seed (episodes, weather, splits).
    """

    episodes: int = attrs.field(default=200, validator=in_range(3, 100_000))
    episode_seconds: float = attrs.field(default=20.0, validator=in_range(1.0, 3600.0))
    sample_rate: float = attrs.field(default=20.0, validator=in_range(1.0, 1000.0))
    substeps: int = attrs.field(default=5, validator=in_range(1, 100))
    time_jitter: float = attrs.field(default=0.0, validator=in_range(0.0, 0.9))
    sequence_length: int = attrs.field(default=20, validator=in_range(1, 1000))
    horizon: int = attrs.field(default=50, validator=in_range(1, 1000))
    stride: int = attrs.field(default=1, validator=in_range(1, 1000))
    val_fraction: float = attrs.field(default=0.15, validator=in_range(0.0, 0.5, low_open=True))
    test_fraction: float = attrs.field(default=0.15, validator=in_range(0.0, 0.5, low_open=True))
    max_wind: float = attrs.field(default=6.0, validator=in_range(0.0, 30.0))
    max_gust: float = attrs.field(default=1.5, validator=in_range(0.0, 10.0))
    withhold: list[str] = attrs.field(factory=list, validator=_factors)
    path: str = ""
    seed: int = 0


@attrs.define
class LinearConfig:
    """``linear_dynamics``: x_{t+1} = A x_t + B u_t + C w_t + d (sizes set from the data)."""

    state_dim: int = attrs.field(default=12, validator=positive)
    action_dim: int = attrs.field(default=4, validator=positive)
    weather_dim: int = attrs.field(default=6, validator=positive)
    sequence_length: int = attrs.field(default=20, validator=positive)


@attrs.define
class GRUConfig:
    """``gru_dynamics``: a GRU over the history window of (state, action, weather, dt)."""

    state_dim: int = attrs.field(default=12, validator=positive)
    action_dim: int = attrs.field(default=4, validator=positive)
    weather_dim: int = attrs.field(default=6, validator=positive)
    sequence_length: int = attrs.field(default=20, validator=positive)
    hidden_dim: int = attrs.field(default=96, validator=in_range(1, 4096))
    num_layers: int = attrs.field(default=1, validator=in_range(1, 8))
    dropout: float = attrs.field(default=0.0, validator=in_range(0.0, 0.9))


@attrs.define
class LSTMConfig:
    """``lstm_predictor``: an LSTM over the history window of (state, action, weather, dt)."""

    state_dim: int = attrs.field(default=12, validator=positive)
    action_dim: int = attrs.field(default=4, validator=positive)
    weather_dim: int = attrs.field(default=6, validator=positive)
    sequence_length: int = attrs.field(default=20, validator=positive)
    hidden_dim: int = attrs.field(default=128, validator=in_range(1, 4096))
    num_layers: int = attrs.field(default=1, validator=in_range(1, 8))
    dropout: float = attrs.field(default=0.0, validator=in_range(0.0, 0.9))


@attrs.define
class NeuralODEConfig:
    """``neural_ode``: dx/dt = f(x, u, w) integrated by torchdiffeq over each sample interval.

    Attributes:
        solver: torchdiffeq method (fixed-step ``euler``/``midpoint``/``rk4``, adaptive ``dopri5``/``bosh3``).
        rtol, atol: tolerances of adaptive solvers.
        step_fraction: fixed-step solvers' step as a fraction of the interval (0.5 = two steps).
        adjoint: backpropagate with the adjoint method (``odeint_adjoint``: O(1) memory, slower).
    """

    state_dim: int = attrs.field(default=12, validator=positive)
    action_dim: int = attrs.field(default=4, validator=positive)
    weather_dim: int = attrs.field(default=6, validator=positive)
    sequence_length: int = attrs.field(default=20, validator=positive)
    hidden_dim: int = attrs.field(default=128, validator=in_range(1, 4096))
    solver: str = attrs.field(default="rk4", validator=one_of("euler", "midpoint", "rk4", "dopri5", "bosh3"))
    rtol: float = attrs.field(default=1e-4, validator=in_range(0.0, 1.0, low_open=True))
    atol: float = attrs.field(default=1e-5, validator=in_range(0.0, 1.0, low_open=True))
    step_fraction: float = attrs.field(default=0.5, validator=in_range(0.0, 1.0, low_open=True))
    adjoint: bool = False


@attrs.define
class VAERNNConfig:
    """``vae_rnn_hybrid``: a VAE for states, a GRU rolling the latent forward.

    Loss: reconstruction + ``beta`` x KL + ``prediction_weight`` x next-state prediction.
    """

    state_dim: int = attrs.field(default=12, validator=positive)
    action_dim: int = attrs.field(default=4, validator=positive)
    weather_dim: int = attrs.field(default=6, validator=positive)
    sequence_length: int = attrs.field(default=20, validator=positive)
    hidden_dim: int = attrs.field(default=64, validator=in_range(1, 4096))
    latent_dim: int = attrs.field(default=16, validator=in_range(1, 1024))
    beta: float = attrs.field(default=1e-3, validator=in_range(0.0, 100.0))
    prediction_weight: float = attrs.field(default=1.0, validator=in_range(0.0, 1000.0))


@attrs.define
class DynamicsEvaluatorConfig:
    """Config of the ``dynamics`` evaluator.

    Attributes:
        batch_size: evaluation batch size.
        horizon: rollout steps scored (the error curve H = 1..horizon; at most the dataset's ``horizon``).
        max_rollout_windows: test windows rolled out (evenly spread; 0 = all).
        permutation: also score the test set with each weather factor permuted across windows.
        seed: seed of the permutations.
    """

    batch_size: int = attrs.field(default=256, validator=positive)
    horizon: int = attrs.field(default=50, validator=in_range(1, 1000))
    max_rollout_windows: int = attrs.field(default=512, validator=in_range(0, 10_000_000))
    permutation: bool = True
    seed: int = 0
