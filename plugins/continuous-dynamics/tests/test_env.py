"""The gymnasium environment: API conformance and the same physics as the batch simulator."""

from __future__ import annotations

import numpy as np
from gymnasium.utils.env_checker import check_env

from mlcore_continuous_dynamics.env import QuadrotorEnv
from mlcore_continuous_dynamics.sim import QuadrotorParams, WaypointController, rk4_step


def test_passes_gymnasiums_env_checker():
    check_env(QuadrotorEnv(max_steps=20), skip_render_check=True)


def test_seeded_resets_repeat_and_the_controller_flies_it():
    env = QuadrotorEnv(max_steps=100)
    obs_a, info_a = env.reset(seed=5)
    obs_b, info_b = env.reset(seed=5)
    assert np.array_equal(obs_a, obs_b) and info_a["episode_weather"] == info_b["episode_weather"]
    ctrl = WaypointController()
    start = np.linalg.norm(obs_a[:3] - info_a["waypoint"])
    info = info_a
    for _ in range(100):
        obs, reward, terminated, truncated, info = env.step(ctrl(obs_a.astype(np.float64), info["waypoint"]))
        obs_a = obs
    assert truncated and not terminated
    assert -reward < start or not np.array_equal(info["waypoint"], info_a["waypoint"])  # closer, or reached it


def test_step_is_the_simulators_rk4_in_calm_weather():
    env = QuadrotorEnv(max_gust=0.0, max_wind=0.0)
    obs, info = env.reset(seed=1)
    action = np.array([10.0, 0.01, -0.01, 0.0])
    nxt, *_ = env.step(action)
    w = info["weather"]
    x = obs.astype(np.float64)
    for _ in range(5):
        x = rk4_step(x, action, w[0:3], np.array(w[3]), np.array(w[5]), 0.01, QuadrotorParams())
    np.testing.assert_allclose(nxt, x, rtol=1e-5, atol=1e-5)
