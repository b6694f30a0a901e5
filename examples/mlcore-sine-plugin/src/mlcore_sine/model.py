"""The ``sine_mlp`` model: the last ``window`` values -> the next value."""

from __future__ import annotations

import attrs
import torch
from torch import nn

from mlcore.config import in_range, one_of, positive

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


@attrs.define
class SineMLPConfig:
    """Config of :class:`SineMLP`.

    Attributes:
        window: input length; the ``sine`` pipeline sets it from the dataset's ``window``.
        hidden: width of the hidden layers.
        layers: number of hidden layers.
        activation: ``tanh``, ``relu`` or ``gelu``.
        dropout: dropout after each hidden layer.
    """

    window: int = attrs.field(default=16, validator=in_range(2, 1024))
    hidden: int = attrs.field(default=64, validator=positive)
    layers: int = attrs.field(default=2, validator=in_range(1, 8))
    activation: str = attrs.field(default="tanh", validator=one_of(*ACTIVATIONS))
    dropout: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, high_open=True))


class SineMLP(nn.Module):
    """A multilayer perceptron mapping ``(batch, window)`` to ``(batch, 1)``."""

    def __init__(self, config: SineMLPConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SineMLPConfig()
        layers: list[nn.Module] = []
        width = cfg.window
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), ACTIVATIONS[cfg.activation]()]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width = cfg.hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict the next (standardised) value."""
        return self.net(x)

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """A random input batch, used by ``mlcore export``."""
        return torch.randn(batch_size, self.config.window)
