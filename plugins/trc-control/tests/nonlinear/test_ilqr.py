"""Tests of mlcore_trc_control.nonlinear.ilqr: exact step Jacobians, the LQR optimum on a linear system,
the box, and the expert-vs-iLQR-vs-LQR check on every nonlinear system."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_trc_control.lqr.solvers import lqr_controls
from mlcore_trc_control.lqr.systems import LinearSystem
from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation, multiple_shooting
from mlcore_trc_control.nonlinear.ilqr import StepJacobians, ilqr
from mlcore_trc_control.nonlinear.systems import NONLINEAR_SYSTEMS, build_nonlinear_system


@pytest.mark.parametrize("name", sorted(NONLINEAR_SYSTEMS))
def test_step_jacobians_match_finite_differences(name: str) -> None:
    sys = build_nonlinear_system(name)
    rng = np.random.default_rng(1)
    x = sys.initial_center + rng.uniform(-1, 1, (3, sys.n)) * np.array(sys.template.initial_range)
    u = rng.uniform(-0.5, 0.5, (3, sys.m)) * sys.control_limit
    dt = np.array([0.1, 0.2, 0.05]) * sys.time_horizon / 5
    nxt, a, b = StepJacobians(sys)(x, u, dt)
    assert np.allclose(nxt, sys.step(x, u, dt), rtol=1e-13, atol=1e-10)
    for i in range(sys.n):
        e = np.zeros(sys.n)
        e[i] = 1e-5 * max(1.0, np.abs(x[:, i]).max())
        fd = (sys.step(x + e, u, dt) - sys.step(x - e, u, dt)) / (2 * e[i])
        assert np.allclose(a[:, :, i], fd, rtol=1e-5, atol=1e-7)
    for j in range(sys.m):
        e = np.zeros(sys.m)
        e[j] = 1e-4 * sys.control_limit
        fd = (sys.step(x, u + e, dt) - sys.step(x, u - e, dt)) / (2 * e[j])
        assert np.allclose(b[:, :, j], fd, rtol=1e-5, atol=1e-9)


def test_ilqr_reaches_the_exact_lqr_optimum_on_a_linear_system() -> None:
    """Van der Pol with mu = 0 is the harmonic oscillator: its RK4 step is linear, so iLQR must land on
    the exact finite-horizon LQR optimum (affine Riccati of that step) from a zero start."""
    sys = build_nonlinear_system("vanderpol", params={"mu": 0.0}, control_limit=0.0, num_steps=25)
    _, a, b = StepJacobians(sys)(np.zeros((1, 2)), np.zeros((1, 1)), np.array([sys.dt]))
    lin = LinearSystem("rk4_oscillator", a[0], b[0], sys.Q, sys.R, sys.Qf, sys.dt, sys.num_steps)
    x0 = np.array([[1.5, -0.5], [-2.0, 1.0]])
    targets = np.array([[0.0, 0.0], [0.5, 0.0]])
    exact, _ = lqr_controls(lin, x0, targets)
    got = ilqr(sys, x0, targets, init=np.zeros((2, 25, 1)))
    assert got.status == ["converged", "converged"]
    assert np.allclose(got.controls, exact, atol=1e-6)
    assert np.allclose(got.costs, lin.cost(lin.rollout(x0, exact), exact, targets), rtol=1e-9)


def test_ilqr_keeps_the_box_and_improves_its_start() -> None:
    sys = build_nonlinear_system("pendulum", num_steps=30)
    x0 = np.array([[2.0, 0.0], [0.5, 0.5]])
    targets = np.zeros_like(x0)
    start = lqr_on_linearisation(sys, x0, targets)
    got = ilqr(sys, x0, targets, init=start.controls)
    assert np.abs(got.controls).max() <= sys.control_limit
    assert np.all(got.costs <= start.costs) and got.costs[0] < 0.9 * start.costs[0]
    assert np.allclose(got.states, sys.rollout(x0, got.controls))


@pytest.fixture(scope="module", params=sorted(NONLINEAR_SYSTEMS))
def three_methods(request):
    """LQR on the linearisation, iLQR and the expert (terminal-constrained and soft) on the same problems."""
    name = request.param
    steps = {"pendulum": 30, "vanderpol": 25, "rocket": 20}[name]
    sys = build_nonlinear_system(name, num_steps=steps)
    rng = np.random.default_rng(5)
    x0 = sys.initial_center + rng.uniform(-1, 1, (4, sys.n)) * np.array(sys.template.initial_range)
    if name == "pendulum":
        x0[0] = [np.pi - 0.1, 0.0]  # one swing-up from near hanging
        x0[1] = [-1.0698, 0.5769]  # where the first warm start that converges is a 5.9x costlier local optimum
    targets = np.zeros_like(x0)
    lqr = lqr_on_linearisation(sys, x0, targets)
    return (
        name,
        sys,
        lqr,
        ilqr(sys, x0, targets, init=lqr.controls),
        multiple_shooting(sys, x0, targets, lqr=lqr),
        multiple_shooting(sys, x0, targets, lqr=lqr, terminal=False),
    )


def test_expert_beats_ilqr_and_lqr_on_success_and_cost(three_methods) -> None:
    name, _, lqr, il, expert, soft = three_methods
    success = {s.expert: float(np.mean(s.terminal_errors < 0.1)) for s in (lqr, il, expert)}
    assert success["multiple_shooting"] == 1.0
    assert success["multiple_shooting"] >= max(success["ilqr"], success["lqr_linearised"])
    assert expert.costs.mean() <= lqr.costs.mean()
    # where iLQR lands too, meeting x_N = r exactly costs the expert at most 1 % more than iLQR's near miss
    landed = il.terminal_errors < 0.1
    assert np.all(expert.costs[landed] <= 1.01 * il.costs[landed])
    assert landed.any() == (name != "rocket")  # iLQR's soft terminal cost leaves the rocket metres off
    # like for like (soft terminal cost, no x_N = r): the expert's optimum is no costlier than iLQR's,
    # except on the rocket, where the expert keeps above ground and iLQR does not
    if name == "rocket":
        assert soft.states[:, 1:, 2].min() >= -1e-6 and il.states[:, 1:, 2].min() < -1.0
    else:
        assert soft.costs.mean() <= il.costs.mean() * (1 + 1e-6)
    # the terminal constraint costs something over the soft optimum (or nothing when it is met anyway)
    assert expert.costs.mean() >= soft.costs.mean() * (1 - 1e-6)
