"""The optimal-set loss against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from mlcore.errors import DataError
from mlcore_diffplan_vins.loss import OptimalSetLoss, OptimalSetLossConfig


def cells(logits: list[list[float]], sets: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets of a 1 x n map (one cell per entry)."""
    lg = torch.tensor(logits).t().reshape(1, 4, 1, len(logits))
    tg = torch.zeros(1, 4, 1, len(logits))
    for i, s in enumerate(sets):
        for a in s:
            tg[0, a, 0, i] = 1
    return lg, tg


def test_set_loss_is_minus_log_probability_of_the_set() -> None:
    lg, tg = cells([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 1.0], [5.0, 5.0, 5.0, 5.0]], [[0, 1], [3], []])
    expected = (-math.log(0.5) - math.log(math.e / (math.e**2 + 2 + math.e))) / 2  # the unlabelled cell is skipped
    assert OptimalSetLoss()(lg, tg).item() == pytest.approx(expected, rel=1e-6)


def test_uniform_target_spreads_mass() -> None:
    lg, tg = cells([[0.0, 0.0, 0.0, 0.0]], [[0, 1]])
    expected = -math.log(0.25)  # CE of uniform logits against (0.5, 0.5, 0, 0)
    assert OptimalSetLoss(OptimalSetLossConfig(target="uniform"))(lg, tg).item() == pytest.approx(expected, rel=1e-6)
    # the set loss is indifferent to how mass is split inside the set; the uniform one is not
    lg2, _ = cells([[10.0, -10.0, -10.0, -10.0]], [[0, 1]])
    assert OptimalSetLoss()(lg2, tg).item() < 1e-6
    assert OptimalSetLoss(OptimalSetLossConfig(target="uniform"))(lg2, tg).item() > 5


def test_no_labelled_cell_gives_zero_and_shape_mismatch_is_one_line() -> None:
    lg, tg = cells([[1.0, 2.0, 3.0, 4.0]], [[]])
    assert OptimalSetLoss()(lg, tg).item() == 0.0
    with pytest.raises(DataError, match=r"logits \[1, 4, 1, 1\] and targets \[1, 4, 1, 2\]"):
        OptimalSetLoss()(lg, torch.zeros(1, 4, 1, 2))
