"""The ``realtime_corrector`` model: an LSTM over a window of the reference -> the current X/Y error."""

from __future__ import annotations

import attrs
import torch
from torch import nn

from mlcore.config import in_range

__all__ = ["RealtimeCorrector", "RealtimeCorrectorConfig"]


@attrs.define
class RealtimeCorrectorConfig:
    """Config of :class:`RealtimeCorrector`.

    Attributes:
        input_size, output_size, sequence_length: set from the dataset (4, 2 and its window length).
        hidden_size: LSTM width (the original work tried 56, 96 and 128).
        num_layers: stacked LSTM layers (1-3).
        dropout: dropout between LSTM layers (and before the head).
        linear_skip: add a linear map of the whole window to the output (the LSTM then learns what a
            linear (ARX) model misses; it also trains much faster). ``false`` is the plain LSTM.
    """

    input_size: int = attrs.field(default=4, validator=in_range(1, 64))
    output_size: int = attrs.field(default=2, validator=in_range(1, 64))
    sequence_length: int = attrs.field(default=50, validator=in_range(2, 2000))
    hidden_size: int = attrs.field(default=96, validator=in_range(4, 1024))
    num_layers: int = attrs.field(default=2, validator=in_range(1, 3))
    dropout: float = attrs.field(default=0.1, validator=in_range(0.0, 1.0, high_open=True))
    linear_skip: bool = True


class RealtimeCorrector(nn.Module):
    """``(batch, T, 4)`` normalised reference window -> ``(batch, 2)`` normalised error at its last sample."""

    def __init__(self, config: RealtimeCorrectorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or RealtimeCorrectorConfig()
        self.lstm = nn.LSTM(
            cfg.input_size,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, cfg.output_size)
        self.skip = nn.Linear(cfg.sequence_length * cfg.input_size, cfg.output_size) if cfg.linear_skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted (normalised) error at the window's last sample."""
        out, _ = self.lstm(x)
        y = self.head(self.drop(out[:, -1]))
        if self.skip is not None:
            y = y + self.skip(x.flatten(1))
        return y

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """A random window batch (for ``mlcore export`` and the latency measurements)."""
        return torch.randn(batch_size, self.config.sequence_length, self.config.input_size)
