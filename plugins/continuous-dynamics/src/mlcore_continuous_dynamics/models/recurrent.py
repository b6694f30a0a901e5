"""``gru_dynamics`` and ``lstm_predictor``: a recurrent net over the history window predicts the state change."""

from __future__ import annotations

import torch
from torch import nn

from mlcore_continuous_dynamics.configs import GRUConfig, LSTMConfig
from mlcore_continuous_dynamics.models.base import DynamicsModel

__all__ = ["GRUDynamics", "LSTMPredictor"]


class _Recurrent(DynamicsModel):
    cell: type[nn.Module] = nn.GRU

    def __init__(self, cfg: GRUConfig | LSTMConfig) -> None:
        super().__init__(cfg)
        features = cfg.state_dim + cfg.action_dim + cfg.weather_dim + 1
        self.rnn = self.cell(
            features,
            cfg.hidden_dim,
            num_layers=cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        out = nn.Linear(cfg.hidden_dim, cfg.state_dim)
        with torch.no_grad():
            out.weight.mul_(0.1)
            out.bias.zero_()
        self.head = nn.Sequential(nn.Linear(cfg.hidden_dim, cfg.hidden_dim), nn.Tanh(), out)

    def predict(
        self, states: torch.Tensor, actions: torch.Tensor, weather: torch.Tensor, dt: torch.Tensor
    ) -> torch.Tensor:
        out, _ = self.rnn(self.step_features(states, actions, weather, dt))
        return states[:, -1] + self.head(out[:, -1])


class GRUDynamics(_Recurrent):
    """GRU over (state, action, weather, dt) of the window; the last hidden state gives x_{t+1} - x_t."""

    cell = nn.GRU

    def __init__(self, config: GRUConfig | None = None) -> None:
        super().__init__(config or GRUConfig())


class LSTMPredictor(_Recurrent):
    """LSTM over (state, action, weather, dt) of the window; the last hidden state gives x_{t+1} - x_t."""

    cell = nn.LSTM

    def __init__(self, config: LSTMConfig | None = None) -> None:
        super().__init__(config or LSTMConfig())
