"""``vae_rnn_hybrid``: a VAE maps states to a latent space; a GRU rolls the latent forward.

The next state is ``x_t + dec(z_{t+1}) - dec(z_t)``: the latent step decoded as a change of state,
so the decoder's reconstruction error cancels to first order. Training loss (``compute_loss``):
reconstruction of the window's states from sampled latents, ``beta`` x the KL divergence to
N(0, I), and ``prediction_weight`` x the error of the predicted next state. At prediction time
the latent means are used.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mlcore.training.batches import split_inputs_targets
from mlcore_continuous_dynamics.configs import VAERNNConfig
from mlcore_continuous_dynamics.models.base import DynamicsModel, check_inputs

__all__ = ["VAERNNHybrid"]


class VAERNNHybrid(DynamicsModel):
    """VAE encoder/decoder of states + GRU transition in the latent space."""

    def __init__(self, config: VAERNNConfig | None = None) -> None:
        cfg = config or VAERNNConfig()
        super().__init__(cfg)
        h, z = cfg.hidden_dim, cfg.latent_dim
        self.encoder = nn.Sequential(nn.Linear(cfg.state_dim, h), nn.SiLU(), nn.Linear(h, 2 * z))
        self.decoder = nn.Sequential(nn.Linear(z, h), nn.SiLU(), nn.Linear(h, cfg.state_dim))
        self.rnn = nn.GRU(z + cfg.action_dim + cfg.weather_dim + 1, h, batch_first=True)
        self.transition = nn.Linear(h, z)
        with torch.no_grad():
            self.transition.weight.mul_(0.1)
            self.transition.bias.zero_()

    def encode(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and log-variance of states ``(..., D)``."""
        mu, logvar = self.encoder(states).chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 10.0)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """States from latents."""
        return self.decoder(latent)

    def _next_latent(
        self, latents: torch.Tensor, actions: torch.Tensor, weather: torch.Tensor, dt: torch.Tensor
    ) -> torch.Tensor:
        features = torch.cat([latents, actions, weather, (dt / self.dt_ref).unsqueeze(-1)], dim=-1)
        out, _ = self.rnn(features)
        return latents[:, -1] + self.transition(out[:, -1])

    def predict(
        self, states: torch.Tensor, actions: torch.Tensor, weather: torch.Tensor, dt: torch.Tensor
    ) -> torch.Tensor:
        mu, _ = self.encode(states)
        return self._decode_next(states, mu, self._next_latent(mu, actions, weather, dt))

    def _decode_next(self, states: torch.Tensor, latents: torch.Tensor, next_latent: torch.Tensor) -> torch.Tensor:
        """x_t + dec(z_{t+1}) - dec(z_t): the latent step, decoded as a change (reconstruction errors cancel)."""
        return states[:, -1] + self.decode(next_latent) - self.decode(latents[:, -1])

    def losses(self, inputs: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three loss terms (``recon``, ``kl``, ``pred``) for one batch."""
        check_inputs(inputs, self.config)
        states = inputs["states"]
        length = states.shape[1]
        mu, logvar = self.encode(states)
        latent = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        recon = (self.decode(latent) - states).pow(2).mean()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1).mean()
        exo = [inputs[k][:, :length] for k in ("actions", "weather", "dt")]
        pred = (self._decode_next(states, latent, self._next_latent(latent, *exo)) - target).pow(2).mean()
        return {"recon": recon, "kl": kl, "pred": pred}

    def compute_loss(self, batch: Any, loss_fn: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
        """reconstruction + beta x KL + prediction_weight x prediction."""
        inputs, target = split_inputs_targets(batch)
        parts = self.losses(inputs, target)
        cfg = self.config
        total = parts["recon"] + cfg.beta * parts["kl"] + cfg.prediction_weight * parts["pred"]
        return total, {k: float(v.detach()) for k, v in parts.items()}
