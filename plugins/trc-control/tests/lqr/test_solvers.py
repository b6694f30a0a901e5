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
    terminal_constrained_optimum,
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


def test_auto_falls_back_to_the_terminal_constrained_optimum() -> None:
    """The stated weights cannot reach 99.9 %, so 'auto' must fall back to the exact-terminal optimum."""
    sys = build_system()
    x0, r = _problems(sys, 2000, seed=42)
    expert, lqr = solve_expert(sys, x0, r, "auto")
    assert lqr.expert == "lqr" and success_rate(lqr.terminal_errors) < 0.999
    assert expert.expert == "optimal"
    assert success_rate(expert.terminal_errors) >= 0.999
    assert lqr.binds.mean() > 0.5  # and the box binds for most LQR problems
    assert np.all(lqr.costs <= expert.costs + 1e-9)  # the LQR optimum is cheaper under the stated cost


def test_auto_keeps_lqr_when_it_reaches_the_bar() -> None:
    sys = build_system(terminal_weight=2000.0, control_limit=0.0)
    x0, r = _problems(sys, 300)
    expert, lqr = solve_expert(sys, x0, r, "auto")
    assert expert is lqr and expert.expert == "lqr"
    assert success_rate(expert.terminal_errors) >= 0.999


# ---------------------------------------------------------------- the terminal-constrained optimum
# These checks build the cost's gradient and the terminal map from LinearSystem.rollout/cost only
# (finite differences of an exact quadratic), independently of the solver's condensed matrices.


def _terminal_map(sys) -> np.ndarray:
    """``G`` with ``x_N = A^N x0 + G U``, from rollouts of unit controls."""
    dim = sys.num_steps * sys.m
    unit = np.eye(dim).reshape(dim, sys.num_steps, sys.m)
    return sys.rollout(np.zeros((dim, sys.n)), unit)[:, -1].T


def _cost_gradient(sys, x0: np.ndarray, r: np.ndarray, u: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Central differences of the stated cost (exact up to rounding: J is quadratic)."""
    flat = u.reshape(-1)
    grad = np.empty_like(flat)
    for j in range(flat.size):
        step = np.zeros_like(flat)
        step[j] = h
        up, down = (flat + step).reshape(1, *u.shape), (flat - step).reshape(1, *u.shape)
        grad[j] = (
            sys.cost(sys.rollout(x0[None], up), up, r[None]) - sys.cost(sys.rollout(x0[None], down), down, r[None])
        )[0] / (2 * h)
    return grad


def _quadratic_form(sys, x0: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(H, q)`` with ``J(U) = U'HU/2 + q'U + c``, identified from cost evaluations."""
    dim = sys.num_steps * sys.m

    def cost(v: np.ndarray) -> float:
        uu = v.reshape(1, sys.num_steps, sys.m)
        return float(sys.cost(sys.rollout(x0[None], uu), uu, r[None])[0])

    zero, eye = cost(np.zeros(dim)), np.eye(dim)
    single = np.array([cost(eye[i]) for i in range(dim)])
    h = np.array([[cost(eye[i] + eye[j]) - single[i] - single[j] + zero for j in range(dim)] for i in range(dim)])
    return h, single - zero - 0.5 * np.diag(h)


def test_optimal_expert_satisfies_the_kkt_conditions() -> None:
    sys = build_system()  # |u| <= 4 binds for some default problems
    x0, r = _problems(sys, 40, seed=5)
    opt = terminal_constrained_optimum(sys, x0, r)
    assert opt.binds.sum() >= 5 and (~opt.binds).sum() >= 5
    g = _terminal_map(sys)
    limit = sys.control_limit
    for i in range(len(x0)):
        u = opt.controls[i].reshape(-1)
        # primal feasibility: the target is reached and the box holds
        assert np.linalg.norm(sys.rollout(x0[i : i + 1], opt.controls[i : i + 1])[0, -1] - r[i]) < 1e-9
        assert np.abs(u).max() <= limit + 1e-12
        grad = _cost_gradient(sys, x0[i], r[i], opt.controls[i])
        scale = max(1.0, np.abs(grad).max())
        # stationarity with the solver's multipliers: grad J + G'y + z = 0
        y, z = opt.eq_multipliers[i], opt.box_multipliers[i]
        np.testing.assert_allclose(grad + g.T @ y + z, 0.0, atol=1e-6 * scale)
        # dual feasibility and complementary slackness: z >= 0 at the upper bound, <= 0 at the lower, 0 inside
        assert np.all(z * np.sign(u) >= -1e-7 * scale)
        np.testing.assert_allclose(z * (limit - np.abs(u)), 0.0, atol=1e-7 * scale)
        # and the multipliers are not just the solver's word: recover y from the free controls alone
        free = np.abs(u) < limit - 1e-7
        y_free = np.linalg.lstsq(g[:, free].T, -grad[free], rcond=None)[0]
        np.testing.assert_allclose(grad[free] + g[:, free].T @ y_free, 0.0, atol=1e-6 * scale)


def test_optimal_expert_equals_the_closed_form_when_the_box_is_inactive() -> None:
    sys = build_system(control_limit=0.0)
    x0, r = _problems(sys, 6, seed=11)
    opt = terminal_constrained_optimum(sys, x0, r)
    assert not opt.binds.any() and set(opt.solver) == {"closed_form"}
    g = _terminal_map(sys)
    a_n = sys.rollout(np.eye(sys.n), np.zeros((sys.n, sys.num_steps, sys.m)))[:, -1].T
    dim = g.shape[1]
    for i in range(len(x0)):
        h, q = _quadratic_form(sys, x0[i], r[i])
        kkt = np.block([[h, g.T], [g, np.zeros((sys.n, sys.n))]])
        u = np.linalg.solve(kkt, np.concatenate([-q, r[i] - a_n @ x0[i]]))[:dim]
        np.testing.assert_allclose(opt.controls[i].reshape(-1), u, atol=1e-7 * max(1.0, np.abs(u).max()))
    # a box that never binds leaves the same solution
    loose = terminal_constrained_optimum(build_system(control_limit=100.0), x0, r)
    np.testing.assert_allclose(loose.controls, opt.controls, atol=1e-12)


def test_optimal_expert_sits_between_lqr_and_min_energy_in_cost() -> None:
    """The box LQR drops x_N = r (cheaper, misses); min-energy ignores Q (reaches, costs more)."""
    sys = build_system()
    x0, r = _problems(sys, 300, seed=8)
    opt = terminal_constrained_optimum(sys, x0, r)
    _, lqr_cost, _ = box_constrained_lqr(sys, x0, r)
    u_me, _ = min_energy(sys, x0, r)
    me_cost = sys.cost(sys.rollout(x0, u_me), u_me, r)
    assert np.all(opt.costs >= lqr_cost - 1e-7 * np.abs(lqr_cost))
    assert np.all(opt.costs <= me_cost + 1e-7 * me_cost)
    assert me_cost.mean() > 1.5 * opt.costs.mean()  # min-energy is far from the optimum of J
    assert opt.costs.mean() < 1.05 * lqr_cost.mean()  # the exact terminal costs little


def test_optimal_expert_clarabel_path_beats_feasible_perturbations() -> None:
    sys = build_system()
    x0, r = _problems(sys, 40, seed=5)
    opt = terminal_constrained_optimum(sys, x0, r)
    i = int(np.flatnonzero(opt.binds)[0])
    u = opt.controls[i].reshape(-1)
    # move the active controls inwards and the free ones anywhere, keeping x_N = r
    g = _terminal_map(sys)
    null = np.linalg.svd(g)[2][sys.n :]
    rng = np.random.default_rng(0)
    tested = 0
    for _ in range(400):
        v = u + null.T @ rng.normal(scale=0.05, size=null.shape[0])
        if np.abs(v).max() > sys.control_limit:
            continue  # leaves the box
        tested += 1
        vv = v.reshape(1, sys.num_steps, sys.m)
        assert sys.cost(sys.rollout(x0[i : i + 1], vv), vv, r[i : i + 1])[0] >= opt.costs[i] - 1e-9
    assert tested >= 5


def test_optimal_expert_unreachable_target_is_a_config_error() -> None:
    sys = build_system(control_limit=0.2)
    with pytest.raises(ConfigError, match=r"data.expert='optimal'.*control_limit=0\.2"):
        terminal_constrained_optimum(sys, np.array([[-2.0, -2.0]]), np.array([[2.0, 2.0]]))


def test_solvers_accept_targets_as_nested_lists() -> None:
    """Targets from a config or JSON arrive as lists: the result equals the array input's."""
    sys = build_system(control_limit=0.0)
    x0, r = _problems(sys, 3, seed=5)
    ric_list, ric = riccati_tracking(sys, r.tolist()), riccati_tracking(sys, r)
    for field in ("K", "kff", "P0", "p0", "c0"):
        assert np.allclose(getattr(ric_list, field), getattr(ric, field), rtol=1e-12, atol=1e-12), field
    for a, b in zip(direct_least_squares(sys, x0, r.tolist()), direct_least_squares(sys, x0, r)):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_control_exactly_at_the_limit_does_not_bind() -> None:
    """Binding means *past* the limit: an unconstrained optimum touching it is kept and not flagged."""
    unbounded = build_system(control_limit=0.0)
    x0, r = _problems(unbounded, 4, seed=2)
    u_lqr, _ = lqr_controls(unbounded, x0, r)
    touching = build_system(control_limit=float(np.abs(u_lqr[0]).max()))
    controls, _, binds = box_constrained_lqr(touching, x0[:1], r[:1])
    assert not binds[0] and np.allclose(controls[0], u_lqr[0], rtol=0, atol=1e-12)
    u_me, me_binds = min_energy(unbounded, x0, r)
    assert not me_binds.any()  # unbounded: nothing binds
    touching = build_system(control_limit=float(np.abs(u_me[0]).max()))
    controls, binds = min_energy(touching, x0[:1], r[:1])
    assert not binds[0] and np.allclose(controls[0], u_me[0], rtol=0, atol=1e-12)
