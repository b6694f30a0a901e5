"""Loss against optimal action *sets*: a cell may have several optimal actions (ties in distance).

``set`` (default): ``-log sum_{a in S} softmax(logits)_a`` — the negative log-probability that
the policy picks *some* optimal action; it is 0 whenever all mass is inside the set, so the model
is free to break ties any way. ``uniform``: cross-entropy against the uniform distribution over
the set (it also asks the model to spread its mass evenly over tied actions). Both average over
the labelled cells (free, not the goal, able to reach it); other cells carry no label.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from mlcore.config import one_of
from mlcore.errors import DataError

__all__ = ["OptimalSetLoss", "OptimalSetLossConfig"]


@attrs.define
class OptimalSetLossConfig:
    """Config of :class:`OptimalSetLoss` (table ``loss``).

    Attributes:
        target: ``set`` (log-probability of the optimal set) or ``uniform`` (cross-entropy against
            the uniform distribution over it).
    """

    target: str = attrs.field(default="set", validator=one_of("set", "uniform"))


class OptimalSetLoss(nn.Module):
    """``loss(logits [B, A, M, M], targets [B, A, M, M] in {0, 1}) -> scalar``; see the module docstring."""

    def __init__(self, config: OptimalSetLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or OptimalSetLossConfig()

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean loss over the labelled cells (those with a non-empty optimal set)."""
        if logits.shape != targets.shape:
            raise DataError(f"loss: logits {list(logits.shape)} and targets {list(targets.shape)} differ in shape")
        log_p = torch.log_softmax(logits, dim=1)
        in_set = targets > 0.5
        labelled = in_set.any(dim=1)
        if self.config.target == "set":
            per_cell = -torch.logsumexp(log_p.masked_fill(~in_set, float("-inf")), dim=1)
        else:
            weights = targets / targets.sum(dim=1, keepdim=True).clamp_min(1.0)
            per_cell = -(weights * log_p).sum(dim=1)
        per_cell = torch.where(labelled, per_cell, torch.zeros_like(per_cell))
        return per_cell.sum() / labelled.sum().clamp_min(1)
