"""The ``graph-action`` loss: next-node sets (discrete) or unit directions (continuous).

Discrete: ``-log sum_{j in S_i} softmax(logits_i)_j`` over each labelled node's neighbour slots
(part 1's :class:`~mlcore_diffplan_vins.loss.OptimalSetLoss` applied to ``[n, D]``: the probability
that the policy picks *some* optimal neighbour). Continuous: ``1 - cos(pred_i, target_i)`` (or the
angle in radians) averaged over the labelled nodes (those whose target direction is non-zero).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mlcore.errors import DataError
from mlcore_diffplan_vins.graphs.config import GraphActionLossConfig
from mlcore_diffplan_vins.loss import OptimalSetLoss, OptimalSetLossConfig

__all__ = ["GraphActionLoss", "angular_loss"]


def angular_loss(pred: Tensor, target: Tensor, kind: str = "cosine") -> Tensor:
    """Mean ``1 - cos`` (``kind="cosine"``) or angle in radians (``"angle"``) over rows with a non-zero target."""
    labelled = target.norm(dim=1) > 0.5
    cos = (pred * target).sum(dim=1) / (pred.norm(dim=1) * target.norm(dim=1)).clamp_min(1e-6)
    if kind == "angle":
        per = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
    else:
        per = 1.0 - cos
    per = torch.where(labelled, per, torch.zeros_like(per))
    return per.sum() / labelled.sum().clamp_min(1)


class GraphActionLoss(nn.Module):
    """``loss(prediction, targets) -> scalar`` (see the module docstring and :class:`GraphActionLossConfig`)."""

    def __init__(self, config: GraphActionLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or GraphActionLossConfig()
        self._set_loss = OptimalSetLoss(OptimalSetLossConfig(target=self.config.target))

    def forward(self, prediction: Tensor, targets: Tensor) -> Tensor:
        """Mean loss over the labelled nodes."""
        if prediction.shape != targets.shape or prediction.dim() != 2:
            raise DataError(
                f"loss graph-action: prediction {list(prediction.shape)} and targets {list(targets.shape)} must both "
                "be [nodes, D] (next-node sets) or [nodes, 2] (loss.continuous / dataset.continuous)"
            )
        if self.config.continuous:
            if prediction.shape[1] != 2:
                raise DataError(
                    f"loss graph-action: loss.continuous=true needs [nodes, 2] directions, got {list(prediction.shape)}"
                )
            return angular_loss(prediction, targets, self.config.angular)
        out: Tensor = self._set_loss(prediction, targets)
        return out
