"""Tests of mlcore_trc_control.nonlinear.systems: RK4 dynamics, costs, serialisation, config errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from mlcore.errors import ConfigError
from mlcore_trc_control.data import LQRDataConfig
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system, system_from_dict


def _reference_rhs(name: str, p: dict[str, float], u: float):  # written independently of the module
    if name == "pendulum":
        inertia = p["mass"] * p["length"] ** 2
        return lambda t, x: [
            x[1],
            (p["mass"] * p["gravity"] * p["length"] * np.sin(x[0]) - p["friction"] * x[1] + u) / inertia,
        ]
    return lambda t, x: [x[1], p["mu"] * (1 - x[0] ** 2) * x[1] - x[0] + u]


@pytest.mark.parametrize("name", ["pendulum", "vanderpol"])
def test_rk4_rollout_matches_an_adaptive_scipy_integration(name: str) -> None:
    """Piecewise-constant controls: each RK4 step against solve_ivp (rtol 1e-10) over the same interval."""
    sys = build_nonlinear_system(name, num_steps=50, time_horizon=2.5)  # random torques make the pendulum chaotic
    rng = np.random.default_rng(0)
    x0 = np.array([[2.5, -0.5], [-1.0, 1.0]])
    controls = rng.uniform(-sys.control_limit, sys.control_limit, (2, 50, 1))
    states = sys.rollout(x0, controls)
    for i in range(2):
        x = x0[i]
        for k in range(50):
            sol = solve_ivp(_reference_rhs(name, sys.params, controls[i, k, 0]), (0, sys.dt), x, rtol=1e-11, atol=1e-12)
            x = sol.y[:, -1]
        # RK4's global error at dt = 0.05 over 2.5 s
        assert np.allclose(states[i, -1], x, atol=1e-4), (states[i, -1], x)
    # and one step is exactly fourth order: halving dt divides the one-step error by ~32
    one = [sys.step(x0[:1], controls[0, :1], dt)[0] for dt in (0.2, 0.1)]
    exact = [
        solve_ivp(_reference_rhs(name, sys.params, controls[0, 0, 0]), (0, dt), x0[0], rtol=1e-12, atol=1e-13).y[:, -1]
        for dt in (0.2, 0.1)
    ]
    ratio = np.linalg.norm(one[0] - exact[0]) / np.linalg.norm(one[1] - exact[1])
    assert 20 < ratio < 45


def test_per_problem_horizons_change_the_step() -> None:
    sys = build_nonlinear_system("vanderpol")
    x0 = np.array([[1.0, 0.0], [1.0, 0.0]])
    controls = np.zeros((2, sys.num_steps, 1))
    states = sys.rollout(x0, controls, np.array([5.0, 4.0]))
    single = sys.rollout(x0[:1], controls[:1], np.array([4.0]))
    assert np.allclose(states[1], single[0])
    assert not np.allclose(states[0, -1], states[1, -1])
    assert np.allclose(states[0], sys.rollout(x0[:1], controls[:1])[0])  # default = the system's 5 s


def test_cost_is_the_stated_quadratic() -> None:
    sys = build_nonlinear_system("pendulum", num_steps=3)
    states = np.array([[[1.0, 0.0], [0.5, 1.0], [0.0, 0.5], [0.1, 0.0]]])
    controls = np.array([[[1.0], [2.0], [0.0]]])
    expected = (100 * 1 + 0 + 100 * 0.25 + 10 * 1 + 0 + 10 * 0.25) + 0.01 * 5 + 100 * (100 * 0.01)
    assert sys.cost(states, controls, np.zeros((1, 2)))[0] == pytest.approx(expected)


def test_round_trip_and_same_problem() -> None:
    sys = build_nonlinear_system("pendulum", params={"friction": 0.2})
    back = system_from_dict(sys.to_dict())
    assert back.same_problem(sys) and back.params["friction"] == 0.2
    assert not back.same_problem(build_nonlinear_system("pendulum"))
    assert not back.same_problem(build_nonlinear_system("pendulum", params={"friction": 0.2}, num_steps=40))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"params": {"mass": -1.0}}, "data.params.mass=-1.0: mass must be > 0 (system 'pendulum')"),
        ({"params": {"spring": 1.0}}, "data.params.spring: unknown parameter of system 'pendulum'"),
        ({"params": {"mass": "heavy"}}, "data.params.mass='heavy' must be a number"),
        ({"horizon_range": [6.0, 4.0]}, "data.horizon_range=[6.0, 4.0]: need 0 < T_min <= T_max"),
        ({"expert": "min_energy"}, "data.expert='min_energy' is not available for the nonlinear system 'pendulum'"),
        ({"control_limit": -1.0}, "control_limit"),
    ],
)
def test_bad_parameters_give_one_line_config_errors(change: dict, message: str) -> None:
    with pytest.raises((ConfigError, ValueError)) as exc:
        LQRDataConfig(system="pendulum", **change).build_system()
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_vanderpol_parameter_check_and_linear_only_fields() -> None:
    with pytest.raises(ConfigError, match=r"data.params.mu=-0.5: mu must be >= 0 \(system 'vanderpol'\)"):
        LQRDataConfig(system="vanderpol", params={"mu": -0.5}).build_system()
    with pytest.raises(ConfigError, match=r"data\.params is only for the nonlinear systems"):
        LQRDataConfig(params={"mu": 1.0}).build_system()
    with pytest.raises(ConfigError, match=r"data\.horizon_range needs a continuous-time model"):
        LQRDataConfig(system="custom", a=[[1.0]], b=[[1.0]], q=[1.0], horizon_range=[4.0, 6.0]).build_system()


# ---------------------------------------------------------------------- rocket landing
def test_rocket_free_fall_and_hover_are_the_stated_physics() -> None:
    """Zero thrust: a parabola under Mars gravity (RK4 is exact on it); hover thrust: constant height and
    the mass flow |T| / (Isp g0)."""
    sys = build_nonlinear_system("rocket", num_steps=10, time_horizon=5.0)
    g, c = sys.params["gravity"], sys.params["isp"] * sys.params["g0"]
    assert g == 3.71 and sys.control_limit == 15000.0 and sys.free_states == (6,)
    x0 = np.array([[10.0, -5.0, 400.0, 1.0, 2.0, -20.0, 2000.0]])
    falling = sys.rollout(x0, np.zeros((1, 10, 3)))[0, -1]
    t = 5.0
    expected = [10.0 + t, -5.0 + 2 * t, 400.0 - 20 * t - g * t**2 / 2, 1.0, 2.0, -20.0 - g * t]
    assert np.allclose(falling[:6], expected, atol=1e-9)
    assert falling[6] == pytest.approx(2000.0 - t * 1.0 / c)  # the 1 N smoothing of |T| only
    hover = np.tile([0.0, 0.0, 2000.0 * g], (1, 1, 1))  # hover thrust of the initial mass, 1 step
    after = sys.rollout(x0[:, :], np.repeat(hover, 10, axis=1)[:, :1], np.array([0.5]))[0, -1]
    assert after[6] == pytest.approx(2000.0 - 0.5 * np.hypot(2000.0 * g, 1.0) / c, rel=1e-9)
    assert after[5] == pytest.approx(-20.0, abs=1e-3)  # acceleration (T/m - g) ~ 0 while m barely drops


def test_rocket_jacobian_matches_finite_differences() -> None:
    sys = build_nonlinear_system("rocket")
    rng = np.random.default_rng(2)
    x = np.array([50.0, -20.0, 300.0, 3.0, -4.0, -15.0, 1900.0])
    u = rng.uniform(-8000, 8000, 3)
    a, b = sys.linearise(x, u)
    f = lambda x_, u_: np.array(sys.rhs(x_, u_))  # noqa: E731
    for i in range(7):
        e = np.zeros(7)
        e[i] = 1e-3 * max(1.0, abs(x[i]))
        assert np.allclose(a[:, i], (f(x + e, u) - f(x - e, u)) / (2 * e[i]), rtol=1e-6, atol=1e-12)
    for j in range(3):
        e = np.zeros(3)
        e[j] = 1.0
        assert np.allclose(b[:, j], (f(x, u + e) - f(x, u - e)) / 2.0, rtol=1e-5, atol=1e-12)


def test_rocket_mass_is_free_in_the_terminal_error_and_cost() -> None:
    sys = build_nonlinear_system("rocket")
    assert list(sys.tracked) == [0, 1, 2, 3, 4, 5]
    final = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1800.0], [3.0, 0.0, 0.0, 0.0, 4.0, 0.0, 1800.0]])
    assert np.allclose(sys.terminal_error(final, np.zeros((2, 7))), [0.0, 5.0])
    assert sys.Q[6, 6] == 0.0 and sys.Qf[2, 2] == 50 * 15.0
    assert np.allclose(sys.trim_control(final[0]), [0.0, 0.0, 1800.0 * 3.71])
    back = system_from_dict(sys.to_dict())
    assert back.free_states == (6,) and back.same_problem(sys)
    assert not back.same_problem(build_nonlinear_system("rocket", num_steps=20))


def test_rocket_rhs_agrees_in_numpy_torch_and_casadi() -> None:
    import casadi as ca
    import torch

    sys = build_nonlinear_system("rocket")
    x = np.array([50.0, -20.0, 300.0, 3.0, -4.0, -15.0, 1900.0])
    u = np.array([1000.0, -2000.0, 9000.0])
    ref = np.array(sys.rhs(x, u))
    tx, tu = torch.tensor(x, dtype=torch.float64), torch.tensor(u, dtype=torch.float64)
    via_torch = torch.stack(sys.rhs(tx, tu, torch)).numpy()
    xs, us = ca.SX.sym("x", 7), ca.SX.sym("u", 3)
    fn = ca.Function("f", [xs, us], [ca.vertcat(*sys.rhs([xs[i] for i in range(7)], [us[j] for j in range(3)], ca))])
    via_casadi = np.asarray(fn(x, u)).reshape(-1)
    assert np.allclose(via_torch, ref, rtol=1e-12) and np.allclose(via_casadi, ref, rtol=1e-12)
