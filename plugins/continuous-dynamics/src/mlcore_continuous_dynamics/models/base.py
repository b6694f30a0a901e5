"""What the five dynamics models share: the input layout, one-step prediction, H-step rollout."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mlcore.evaluation.rollout import autoregressive_rollout

__all__ = ["DynamicsModel", "check_inputs"]

EXOGENOUS = ("actions", "weather", "dt")


def check_inputs(inputs: Any, cfg: Any) -> None:
    """A dict of the dataset's inputs with the config's sizes; a mismatch names the config key."""
    if not isinstance(inputs, dict) or not {"states", *EXOGENOUS} <= set(inputs):
        raise ValueError("inputs must be a dict with states, actions, weather and dt (the vehicle-episodes layout)")
    for key, size in (("states", cfg.state_dim), ("actions", cfg.action_dim), ("weather", cfg.weather_dim)):
        if inputs[key].shape[-1] != size:
            field = {"states": "state_dim", "actions": "action_dim", "weather": "weather_dim"}[key]
            raise ValueError(f"{key} have {inputs[key].shape[-1]} features but model.{field}={size}")


class DynamicsModel(nn.Module):
    """Base class: ``forward(inputs) -> next state (B, D)`` and :meth:`rollout`.

    ``inputs`` holds normalised ``states (B, L, D)`` and ``actions``, ``weather``, ``dt`` of at least
    ``L`` steps (only the first ``L`` are used by ``forward``). Subclasses implement :meth:`predict`.
    """

    dt_ref: torch.Tensor

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        # the nominal sample interval: dt features are dt / dt_ref (set from the data by the pipeline)
        self.register_buffer("dt_ref", torch.tensor(0.05))

    def predict(self, states: torch.Tensor, actions: torch.Tensor, weather: torch.Tensor, dt: torch.Tensor) -> Any:
        """The next state from a window of ``L`` aligned steps."""
        raise NotImplementedError

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The normalised state at ``t + 1`` from the window ending at ``t``."""
        check_inputs(inputs, self.config)
        length = inputs["states"].shape[1]
        exo = [inputs[k][:, :length] for k in EXOGENOUS]
        return self.predict(inputs["states"], *exo)

    def rollout(self, inputs: dict[str, torch.Tensor], horizon: int) -> torch.Tensor:
        """``(B, horizon, D)``: ``horizon`` steps, each fed the model's own previous predictions."""
        exo = {k: inputs[k] for k in EXOGENOUS}
        return autoregressive_rollout(lambda s, e: self.forward({"states": s, **e}), inputs["states"], horizon, exo)

    def random_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """A random batch of the input layout (a dict: these models are not exported to ONNX/TorchScript)."""
        cfg = self.config
        length = cfg.sequence_length
        return {
            "states": torch.randn(batch_size, length, cfg.state_dim),
            "actions": torch.randn(batch_size, length, cfg.action_dim),
            "weather": torch.randn(batch_size, length, cfg.weather_dim),
            "dt": torch.full((batch_size, length), float(self.dt_ref)),
        }

    def step_features(
        self, states: torch.Tensor, actions: torch.Tensor, weather: torch.Tensor, dt: torch.Tensor
    ) -> torch.Tensor:
        """Per-step input of the recurrent models: ``[state, action, weather, dt / dt_ref]``."""
        return torch.cat([states, actions, weather, (dt / self.dt_ref).unsqueeze(-1)], dim=-1)
