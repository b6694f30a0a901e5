"""Tests of the MLP baseline policy's normalisation."""

from __future__ import annotations

import torch

from mlcore_trc_control.models.mlp import MLPPolicy


def test_a_constant_input_keeps_unit_scale() -> None:
    # a fixed-horizon data set has a constant horizon column: dividing it by a clamped ~0 std turned
    # any other horizon (closed-loop re-planning, DAgger, generalisation) into an input of ~1e6
    torch.manual_seed(0)
    problems = torch.cat([torch.randn(64, 4), torch.full((64, 1), 5.0)], dim=1)
    model = MLPPolicy(5, 10, 1, 16)
    model.set_normalisation(problems, torch.randn(64, 10, 1))
    assert model.std[-1] == 1.0 and model.mean[-1] == 5.0
    assert torch.allclose(model.std[:4], problems[:, :4].std(0))
    shorter = problems[:2].clone()
    shorter[:, -1] = 2.5
    assert float(model(shorter).abs().max()) < 100.0
