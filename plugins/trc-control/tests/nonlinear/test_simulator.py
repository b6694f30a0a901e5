"""Tests of mlcore_trc_control.nonlinear.simulator: agreement with NumPy, gradients, a falling loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcore_trc_control.nonlinear.simulator import TorchSimulator
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system


def _problems(sys, x0: np.ndarray, horizons: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.concatenate([x0, np.zeros_like(x0), horizons[:, None]], axis=1), dtype=torch.float64)


@pytest.mark.parametrize("name", ["pendulum", "vanderpol"])
def test_torch_rollout_and_cost_match_numpy(name: str) -> None:
    sys = build_nonlinear_system(name, num_steps=20)
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-2, 2, (4, 2))
    horizons = np.array([5.0, 4.0, 6.0, 3.0])
    controls = rng.uniform(-2, 2, (4, 20, 1))
    sim = TorchSimulator(sys).double()
    states = sim.rollout(_problems(sys, x0, horizons), torch.as_tensor(controls)).numpy()
    ref = sys.rollout(x0, controls, horizons)
    assert np.allclose(states, ref, atol=1e-10)
    cost = sim.cost(_problems(sys, x0, horizons), torch.as_tensor(controls)).numpy()
    assert np.allclose(cost, sys.cost(ref, controls, np.zeros_like(x0)), rtol=1e-10)


@pytest.mark.parametrize("name", ["pendulum", "vanderpol"])
def test_gradient_matches_finite_differences(name: str) -> None:
    sys = build_nonlinear_system(name, num_steps=10)
    sim = TorchSimulator(sys).double()
    problems = _problems(sys, np.array([[1.5, -0.3]]), np.array([5.0]))
    u = torch.linspace(-1.0, 1.0, 10, dtype=torch.float64).reshape(1, 10, 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: sim.cost(problems, v), (u,), eps=1e-6, atol=1e-5, rtol=1e-5)
    assert torch.autograd.gradcheck(lambda v: sim.rollout(problems, v)[:, -1], (u,), eps=1e-6, atol=1e-6)


def test_a_terminal_loss_through_the_simulator_falls() -> None:
    """Plain gradient descent on the controls drives the Van der Pol state to the origin."""
    sys = build_nonlinear_system("vanderpol", num_steps=20)
    sim = TorchSimulator(sys)
    problems = _problems(sys, np.array([[1.5, 1.0], [-1.0, 0.5]]), np.array([5.0, 5.0])).float()
    u = torch.zeros(2, 20, 1, requires_grad=True)
    opt = torch.optim.Adam([u], lr=0.05)
    first = None
    for _ in range(150):
        loss = (sim.terminal_error(problems, u) ** 2).mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.01 * first
