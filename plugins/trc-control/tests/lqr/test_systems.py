"""Tests of mlcore_trc_control.lqr.systems: discretisation, costs, config validation."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.errors import ConfigError
from mlcore_trc_control.lqr.systems import LinearSystem, build_system, zoh_discretise


def test_double_integrator_exact_zoh() -> None:
    sys = build_system("double_integrator", num_steps=15, time_horizon=5.0)
    dt = 5.0 / 15
    assert sys.dt == pytest.approx(dt)
    np.testing.assert_allclose(sys.A, [[1.0, dt], [0.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(sys.B, [[dt**2 / 2], [dt]], atol=1e-12)
    np.testing.assert_allclose(sys.Q, np.diag([10.0, 5.0]))
    np.testing.assert_allclose(sys.R, [[0.1]])
    np.testing.assert_allclose(sys.Qf, 20 * np.diag([10.0, 5.0]))
    assert sys.control_limit == 4.0


def test_planar_is_two_decoupled_double_integrators() -> None:
    sys = build_system("planar_double_integrator")
    one = build_system("double_integrator")
    assert (sys.n, sys.m) == (4, 2)
    # x-axis block: states (px, vx) = (0, 2), control ax = 0
    np.testing.assert_allclose(sys.A[np.ix_([0, 2], [0, 2])], one.A, atol=1e-12)
    np.testing.assert_allclose(sys.B[[0, 2], 0], one.B[:, 0], atol=1e-12)
    assert np.allclose(sys.B[[0, 2], 1], 0)


def test_cartpole_zoh_matches_fine_euler_integration() -> None:
    sys = build_system("cartpole", num_steps=20, time_horizon=1.0)
    from mlcore_trc_control.lqr.systems import SYSTEMS

    t = SYSTEMS["cartpole"]()
    x0, u = np.array([0.1, 0.0, 0.05, -0.02]), np.array([0.7])
    x = x0.copy()
    sub = 20000
    for _ in range(sub):  # forward Euler with a tiny step under the held control
        x = x + (t.ac @ x + t.bc @ u) * (sys.dt / sub)
    np.testing.assert_allclose(sys.A @ x0 + sys.B @ u, x, atol=1e-5)
    # the upright equilibrium is unstable: A has an eigenvalue outside the unit circle
    assert np.abs(np.linalg.eigvals(sys.A)).max() > 1.0


def test_custom_system_continuous_and_discrete() -> None:
    ac, bc = [[0.0, 1.0], [0.0, 0.0]], [[0.0], [1.0]]
    cont = build_system("custom", a=ac, b=bc, continuous=True, q=[10, 5], r=[0.1], time_horizon=5.0)
    np.testing.assert_allclose(cont.A, build_system().A, atol=1e-12)
    disc = build_system("custom", a=[[1.0, 0.5], [0.0, 1.0]], b=[0.1, 0.5], q=[[2, 0], [0, 1]], r=[1.0])
    assert disc.B.shape == (2, 1) and disc.control_limit == 0.0


def test_cost_is_the_stated_sum() -> None:
    sys = build_system()
    rng = np.random.default_rng(0)
    x0, r = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    u = rng.normal(size=(3, 15, 1))
    states = sys.rollout(x0, u)
    i = 1
    expected = sum((states[i, k] - r[i]) @ sys.Q @ (states[i, k] - r[i]) + u[i, k] @ sys.R @ u[i, k] for k in range(15))
    expected += (states[i, 15] - r[i]) @ sys.Qf @ (states[i, 15] - r[i])
    assert sys.cost(states, u, r)[i] == pytest.approx(expected, rel=1e-12)
    # rollout is x_{k+1} = A x_k + B u_k
    np.testing.assert_allclose(states[i, 3], sys.A @ states[i, 2] + sys.B @ u[i, 2])


def test_dict_roundtrip_and_same_problem() -> None:
    sys = build_system("planar_double_integrator", num_steps=10)
    back = LinearSystem.from_dict(sys.to_dict())
    assert back.same_problem(sys)
    assert not back.same_problem(build_system("planar_double_integrator", num_steps=10, terminal_weight=5.0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"q": [1.0, 2.0, 3.0]}, "q: expected 2 diagonal values"),
        ({"r": [0.0]}, "r: must be positive definite"),
        ({"q": [[1.0, 2.0], [0.0, 1.0]]}, "q: must be symmetric"),
        ({"control_limit": -1.0}, "control_limit=-1.0"),
        ({"time_horizon": 0.0}, "time_horizon=0.0"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as info:
        build_system("double_integrator", where="data.", **kwargs)
    assert "data." in str(info.value)


def test_unknown_and_incomplete_systems() -> None:
    with pytest.raises(ConfigError, match="allowed: double_integrator"):
        build_system("pendulum")
    with pytest.raises(ConfigError, match="needs both"):
        build_system("custom", a=[[1.0]])


def test_zoh_of_pure_integrator() -> None:
    a, b = zoh_discretise(np.zeros((1, 1)), np.ones((1, 1)), 0.25)
    assert a[0, 0] == pytest.approx(1.0) and b[0, 0] == pytest.approx(0.25)


def test_with_horizon_rediscretises_exactly() -> None:
    base = build_system("double_integrator", num_steps=15, time_horizon=5.0)
    other = base.with_horizon(4.0)
    direct = build_system("double_integrator", num_steps=15, time_horizon=4.0)
    assert np.allclose(other.A, direct.A) and np.allclose(other.B, direct.B) and other.dt == pytest.approx(4.0 / 15)
    assert base.with_horizon(5.0) is base
    assert LinearSystem.from_dict(base.to_dict()).with_horizon(4.0).same_problem(direct)
    discrete = build_system("custom", a=[[1.0]], b=[[1.0]], q=[1.0], num_steps=5)
    with pytest.raises(ConfigError, match="given in discrete time"):
        discrete.with_horizon(2.0)
    continuous = build_system("custom", a=[[0.0]], b=[[1.0]], q=[1.0], num_steps=5, time_horizon=5.0, continuous=True)
    assert np.allclose(continuous.with_horizon(10.0).B, [[2.0]])
