"""``QuadrotorEnv``: the simulator as a gymnasium environment (one episode, one weather draw).

Same physics as :func:`~mlcore_continuous_dynamics.sim.simulate_episodes` (RK4 substeps, OU gusts
per substep, action held over the sample interval). Observation: the 12-D state; action: thrust
and body torques (4); reward: minus the distance to the current waypoint; ``info`` holds the
weather at the sample time, the episode's weather draw and the waypoint. The episode ends when
the vehicle leaves the arena (``terminated``) or after ``max_steps`` (``truncated``).

    from mlcore_continuous_dynamics.env import QuadrotorEnv
    from mlcore_continuous_dynamics.sim import WaypointController

    env = QuadrotorEnv()
    obs, info = env.reset(seed=0)
    controller = WaypointController()
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(controller(obs, info["waypoint"]))
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from mlcore_continuous_dynamics.sim import QuadrotorParams, rk4_step, sample_weather

__all__ = ["QuadrotorEnv"]


class QuadrotorEnv(gym.Env[np.ndarray, np.ndarray]):
    """A quadrotor in sampled weather; see the module docstring."""

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        *,
        sample_rate: float = 20.0,
        substeps: int = 5,
        max_steps: int = 400,
        max_wind: float = 6.0,
        max_gust: float = 1.5,
        arena: float = 10.0,
        reach: float = 1.0,
        params: QuadrotorParams | None = None,
    ) -> None:
        self.params = params or QuadrotorParams()
        self.dt = 1.0 / sample_rate
        self.substeps = substeps
        self.max_steps = max_steps
        self.max_wind, self.max_gust = max_wind, max_gust
        self.arena, self.reach = arena, reach
        high = np.full(12, np.inf, dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        prm = self.params
        self.action_space: gym.spaces.Box = gym.spaces.Box(
            np.array([0.0, -prm.max_torque, -prm.max_torque, -prm.max_torque], dtype=np.float32),
            np.array([prm.max_thrust, prm.max_torque, prm.max_torque, prm.max_torque], dtype=np.float32),
            dtype=np.float32,
        )
        self.state = np.zeros(12)
        self.gust = np.zeros(3)
        self.steps = 0

    def _waypoint(self) -> np.ndarray:
        r = self.np_random
        return np.array([r.uniform(-self.arena, self.arena), r.uniform(-self.arena, self.arena), r.uniform(2.0, 8.0)])

    def _weather_now(self) -> np.ndarray:
        w = self.weather
        return np.array([*(np.asarray(w.wind_mean) + self.gust), w.rho, w.temperature, w.rain])

    def _info(self) -> dict[str, Any]:
        return {
            "weather": self._weather_now(),
            "waypoint": self.waypoint.copy(),
            "episode_weather": self.weather.record(),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.weather = sample_weather(self.np_random, max_wind=self.max_wind, max_gust=self.max_gust)
        self.state = np.zeros(12)
        self.state[0:3] = self._waypoint()
        self.waypoint = self._waypoint()
        self.gust = self.weather.gust_sigma * self.np_random.standard_normal(3)
        self.steps = 0
        return self.state.astype(np.float32), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        w, prm = self.weather, self.params
        act = np.clip(np.asarray(action, dtype=np.float64), self.action_space.low, self.action_space.high)
        h = self.dt / self.substeps
        decay = np.exp(-h / w.gust_tau)
        rho, rain = np.array(w.rho), np.array(w.rain)
        for _ in range(self.substeps):
            self.state = rk4_step(self.state, act, np.asarray(w.wind_mean) + self.gust, rho, rain, h, prm)
            self.gust = self.gust * decay + w.gust_sigma * np.sqrt(1 - decay**2) * self.np_random.standard_normal(3)
        self.steps += 1
        distance = float(np.linalg.norm(self.state[0:3] - self.waypoint))
        if distance < self.reach:
            self.waypoint = self._waypoint()
        terminated = bool(np.abs(self.state[0:2]).max() > 3 * self.arena or not np.isfinite(self.state).all())
        truncated = self.steps >= self.max_steps
        return self.state.astype(np.float32), -distance, terminated, truncated, self._info()
