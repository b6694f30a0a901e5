"""Tests of mlcore_trc_control.lqr.solvers: the experts are the true optima of their costs."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.errors import ConfigError
from mlcore_trc_control.lqr.solvers import (
    box_constrained_lqr,
    condensed,
    direct_least_squares,
    lqr_controls,
    min_energy,
    riccati_tracking,
    solve_expert,
    success_rate,
)
from mlcore_trc_control.lqr.systems import build_system


def _problems(sys, num: int, seed: int = 0, scale: float = 2.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-scale, scale, (num, sys.n)), rng.uniform(-scale, scale, (num, sys.n))


@pytest.mark.parametrize("name", ["double_integrator", "planar_double_integrator", "cartpole"])
def test_affine_riccati_matches_direct_least_squares(name: str) -> None:
    sys = build_system(name, control_limit=0.0)
    x0, r = _problems(sys, 50, scale=0.5 if name == "cartpole" else 2.0)
    u_ric, c_ric = lqr_controls(sys, x0, r)
    u_ls, c_ls = direct_least_squares(sys, x0, r)
    scale = max(1.0, np.abs(u_ls).max())
    np.testing.assert_allclose(u_ric, u_ls, atol=1e-8 * scale)
    np.testing.assert_allclose(c_ric, c_ls, rtol=1e-8)
    # the value function's cost equals the rolled-out cost of the controls
    np.testing.assert_allclose(c_ric, sys.cost(sys.rollout(x0, u_ric), u_ric, r), rtol=1e-9)


def test_regulator_shortcut_is_not_optimal_for_moving_targets() -> None:
    """u = -K (x - r) ignores the affine terms; its cost is higher and it misses the target."""
    sys = build_system(control_limit=0.0)
    x0, r = _problems(sys, 500)
    gains = riccati_tracking(sys, np.zeros_like(r)).K
    x = x0.copy()
    u_naive = np.empty((500, sys.num_steps, 1))
    for k in range(sys.num_steps):
        u_naive[:, k] = -(x - r) @ gains[k].T
        x = x @ sys.A.T + u_naive[:, k] @ sys.B.T
    _, c_opt = lqr_controls(sys, x0, r)
    c_naive = sys.cost(sys.rollout(x0, u_naive), u_naive, r)
    assert np.all(c_naive >= c_opt - 1e-9)
    assert c_naive.mean() > 1.2 * c_opt.mean()


def test_box_constrained_optimum_satisfies_kkt_and_beats_clipping() -> None:
    sys = build_system()  # |u| <= 4 binds for most default problems
    x0, r = _problems(sys, 60, seed=3)
    u, costs, binds = box_constrained_lqr(sys, x0, r)
    assert binds.sum() > 10
    assert np.abs(u).max() <= sys.control_limit + 1e-9
    cond = condensed(sys)
    d = cond.rhs(x0, r)
    u_unc, c_unc = lqr_controls(sys, x0, r)
    u_clip = np.clip(u_unc, -4, 4)
    c_clip = sys.cost(sys.rollout(x0, u_clip), u_clip, r)
    for i in np.flatnonzero(binds):
        v = u[i].reshape(-1)
        grad = 2 * cond.matrix.T @ (cond.matrix @ v - d[i])
        scale = max(1.0, np.abs(grad).max())
        at_upper, at_lower = v >= 4 - 1e-7, v <= -4 + 1e-7
        free = ~(at_upper | at_lower)
        assert np.all(np.abs(grad[free]) <= 1e-5 * scale)  # stationarity on free controls
        assert np.all(grad[at_upper] <= 1e-5 * scale)  # pushing further out would help: bound active
        assert np.all(grad[at_lower] >= -1e-5 * scale)
        assert costs[i] <= c_clip[i] + 1e-9
        assert costs[i] >= c_unc[i] - 1e-9
    assert costs[binds].mean() < c_clip[binds].mean()
    np.testing.assert_allclose(costs, sys.cost(sys.rollout(x0, u), u, r), rtol=1e-9)


def test_box_constrained_is_optimal_against_random_feasible_perturbations() -> None:
    sys = build_system()
    x0, r = _problems(sys, 5, seed=7)
    u, costs, _ = box_constrained_lqr(sys, x0, r)
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = np.clip(u + rng.normal(scale=0.05, size=u.shape), -4, 4)
        assert np.all(sys.cost(sys.rollout(x0, v), v, r) >= costs - 1e-9)


def test_min_energy_reaches_target_exactly_with_least_energy() -> None:
    sys = build_system()
    x0, r = _problems(sys, 200)
    u, binds = min_energy(sys, x0, r)
    assert not binds.any()  # the default problems never need more than |u| = 3
    err = np.linalg.norm(sys.rollout(x0, u)[:, -1] - r, axis=1)
    assert err.max() < 1e-9
    # any other exact solution differs by a null-space direction of the terminal map: more energy
    cond = condensed(sys)
    g = cond.gamma[-sys.n :]
    null = np.linalg.svd(g)[2][sys.n :]
    rng = np.random.default_rng(1)
    v = u[0].reshape(-1) + null.T @ rng.normal(size=null.shape[0]) * 0.1
    assert np.allclose(g @ v, g @ u[0].reshape(-1))
    assert v @ v > u[0].reshape(-1) @ u[0].reshape(-1)


def test_min_energy_with_binding_limit_stays_feasible() -> None:
    sys = build_system(control_limit=2.0)
    x0, r = _problems(sys, 60, seed=2)
    u, binds = min_energy(sys, x0, r)
    assert binds.any()
    assert np.abs(u).max() <= 2.0 + 1e-9
    assert np.linalg.norm(sys.rollout(x0, u)[:, -1] - r, axis=1).max() < 1e-5


def test_min_energy_unreachable_target_is_a_config_error() -> None:
    sys = build_system(control_limit=0.2)
    x0, r = np.array([[-2.0, -2.0]]), np.array([[2.0, 2.0]])
    with pytest.raises(ConfigError, match=r"cannot be reached exactly within control_limit=0\.2"):
        min_energy(sys, x0, r)


def test_default_oracle_reaches_success_bar() -> None:
    """The stated weights cannot reach 99.9 %, so 'auto' must fall back to the exact-terminal expert."""
    sys = build_system()
    x0, r = _problems(sys, 2000, seed=42)
    expert, lqr = solve_expert(sys, x0, r, "auto")
    assert lqr.expert == "lqr" and success_rate(lqr.terminal_errors) < 0.999
    assert expert.expert == "min_energy"
    assert success_rate(expert.terminal_errors) >= 0.999
    assert lqr.binds.mean() > 0.5  # and the box binds for most LQR problems
    assert np.all(lqr.costs <= expert.costs + 1e-9)  # the LQR optimum is cheaper under the stated cost


def test_auto_keeps_lqr_when_it_reaches_the_bar() -> None:
    sys = build_system(terminal_weight=2000.0, control_limit=0.0)
    x0, r = _problems(sys, 300)
    expert, lqr = solve_expert(sys, x0, r, "auto")
    assert expert is lqr and expert.expert == "lqr"
    assert success_rate(expert.terminal_errors) >= 0.999
