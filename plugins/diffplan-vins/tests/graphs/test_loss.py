"""The graph-action loss: set log-likelihood and angular losses by hand."""

from __future__ import annotations

import math

import pytest
import torch

from mlcore.errors import DataError
from mlcore_diffplan_vins.graphs.config import GraphActionLossConfig
from mlcore_diffplan_vins.graphs.loss import GraphActionLoss


def test_set_loss_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0, -1e4], [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    p_last = math.exp(4) / sum(math.exp(v) for v in (1, 2, 3, 4))
    expect = (-math.log(2 / 3) - math.log(p_last)) / 2  # the unlabelled third node does not count
    assert GraphActionLoss()(logits, targets).item() == pytest.approx(expect, rel=1e-6)


def test_cosine_and_angle_by_hand() -> None:
    pred = torch.tensor([[2.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # the last row is unlabelled
    cos = GraphActionLoss(GraphActionLossConfig(continuous=True))(pred, target).item()
    assert cos == pytest.approx(((1 - 0.0) + (1 - math.sqrt(0.5))) / 2, rel=1e-6)
    ang = GraphActionLoss(GraphActionLossConfig(continuous=True, angular="angle"))(pred, target).item()
    assert ang == pytest.approx((math.pi / 2 + math.pi / 4) / 2, rel=1e-5)


def test_shape_mismatch_is_one_line() -> None:
    with pytest.raises(DataError, match=r"prediction \[3, 2\] and targets \[3, 4\]"):
        GraphActionLoss()(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(DataError, match=r"loss\.continuous=true needs"):
        GraphActionLoss(GraphActionLossConfig(continuous=True))(torch.zeros(3, 4), torch.zeros(3, 4))


def test_gradient_is_finite_at_zero_prediction() -> None:
    pred = torch.zeros(2, 2, requires_grad=True)
    GraphActionLoss(GraphActionLossConfig(continuous=True, angular="angle"))(pred, torch.eye(2)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
