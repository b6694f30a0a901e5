"""The simulator's physics, integrator, weather and controller."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_continuous_dynamics.sim import (
    EpisodeWeather,
    QuadrotorParams,
    WaypointController,
    derivatives,
    rk4_step,
    sample_weather,
    simulate_episodes,
    true_model_rollout,
)

P = QuadrotorParams()


def _calm(n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((n, 3)), np.full(n, P.rho0), np.zeros(n)


def test_hover_is_an_equilibrium_in_calm_air():
    wind, rho, rain = _calm()
    state = np.zeros((1, 12))
    state[0, 2] = 5.0
    action = np.array([[P.mass * P.gravity, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(derivatives(state, action, wind, rho, rain, P), 0.0, atol=1e-12)


def test_drag_pushes_the_vehicle_along_the_wind():
    state = np.zeros((1, 12))
    action = np.array([[P.mass * P.gravity, 0, 0, 0]])
    d = derivatives(state, action, np.array([[5.0, 0.0, 0.0]]), np.array([1.2]), np.zeros(1), P)
    expected = 0.5 * 1.2 * P.drag_area * 25.0 / P.mass  # F = 1/2 rho CdA |v-w|(w-v) at rest
    assert d[0, 3] == pytest.approx(expected)
    assert d[0, 4] == pytest.approx(0.0)


def test_density_scales_thrust_and_rain_adds_mass():
    state = np.zeros((2, 12))
    action = np.tile([[P.mass * P.gravity, 0, 0, 0]], (2, 1))
    thin = derivatives(state, action, np.zeros((2, 3)), np.array([P.rho0 / 2, P.rho0]), np.array([0.0, 1.0]), P)
    assert thin[0, 5] == pytest.approx(-P.gravity / 2)  # half the density: half the thrust
    assert thin[1, 5] == pytest.approx(P.mass * P.gravity / (P.mass + P.rain_mass) - P.gravity)


def test_rk4_is_fourth_order():
    """Halving the step divides the error of a tumbling, drifting flight by about 2^4."""
    wind, rho, rain = np.array([[2.0, -1.0, 0.3]]), np.array([1.1]), np.array([0.5])
    x0 = np.zeros((1, 12))
    x0[0, 3:6] = [1.0, 0.5, -0.2]
    x0[0, 6:9] = [0.2, -0.1, 0.3]
    x0[0, 9:12] = [1.0, -0.5, 0.2]
    action = np.array([[11.0, 0.01, -0.02, 0.005]])

    def integrate(n: int) -> np.ndarray:
        x = x0.copy()
        for _ in range(n):
            x = rk4_step(x, action, wind, rho, rain, 0.4 / n, P)
        return x

    exact = integrate(512)
    errors = [np.abs(integrate(n) - exact).max() for n in (4, 8)]
    assert 12 < errors[0] / errors[1] < 20


def test_ou_gusts_have_the_sampled_strength():
    weather = EpisodeWeather((0.0, 0.0, 0.0), gust_sigma=1.0, gust_tau=0.5, temperature=15.0, pressure=101325.0, rain=0)
    arrays = simulate_episodes([weather] * 8, steps=600, dt=0.05, substeps=5, rng=np.random.default_rng(0))
    wind = arrays["weather"][:, :, 0:3]
    assert wind.std() == pytest.approx(1.0, rel=0.1)
    lag = 10  # 0.5 s = one time constant: correlation e^-1
    corr = np.mean(wind[:, lag:] * wind[:, :-lag]) / wind.var()
    assert corr == pytest.approx(np.exp(-1), abs=0.1)


def test_density_follows_the_ideal_gas_law():
    w = EpisodeWeather((0, 0, 0), 0.0, 1.0, temperature=15.0, pressure=101325.0, rain=0.0)
    assert w.rho == pytest.approx(1.225, abs=0.001)


def test_controller_flies_to_the_waypoint_in_calm_air():
    weather = EpisodeWeather((0.0, 0.0, 0.0), 0.0, 1.0, 15.0, 101325.0, 0.0)
    arrays = simulate_episodes([weather], steps=200, dt=0.05, substeps=5, rng=np.random.default_rng(1), reach=0.0)
    target = arrays["waypoints"][0, -1]
    assert np.linalg.norm(arrays["states"][0, -1, :3] - target) < 0.3
    assert np.abs(arrays["actions"][0, :, 0]).max() <= P.max_thrust


def test_controller_hovers_with_nominal_thrust():
    state = np.zeros((1, 12))
    state[0, :3] = [1.0, 2.0, 3.0]
    action = WaypointController(P)(state, state[:, :3].copy())
    np.testing.assert_allclose(action[0], [P.mass * P.gravity, 0, 0, 0], atol=1e-9)


def test_true_model_reproduces_gust_free_episodes_exactly():
    rng = np.random.default_rng(3)
    weathers = [sample_weather(rng, max_gust=0.0) for _ in range(3)]
    arrays = simulate_episodes(weathers, steps=30, dt=0.05, substeps=5, rng=rng)
    pred = true_model_rollout(
        arrays["states"][:, 0],
        arrays["actions"],
        arrays["weather"][:, :-1],
        np.diff(arrays["times"], axis=1),
        substeps=5,
    )
    np.testing.assert_allclose(pred, arrays["states"][:, 1:], atol=1e-9)


def test_weather_draws_are_in_range():
    rng = np.random.default_rng(0)
    draws = [sample_weather(rng, max_wind=6.0, max_gust=1.5) for _ in range(200)]
    speeds = [np.hypot(*w.wind_mean[:2]) for w in draws]
    assert max(speeds) <= 6.0 and max(w.gust_sigma for w in draws) <= 1.5
    assert min(w.rho for w in draws) > 0.9 and max(w.rho for w in draws) < 1.4
    assert 0.2 < np.mean([w.rain == 0 for w in draws]) < 0.6
