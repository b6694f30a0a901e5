"""Robustness wrappers: observation noise, action delay and sensor (range ray) dropout."""

from __future__ import annotations

from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np


def _core_key(obs: Any) -> Any:
    return obs["observation"] if isinstance(obs, dict) else obs


class _ObsWrapper(gym.ObservationWrapper):
    def observation(self, observation: Any) -> Any:
        if isinstance(observation, dict):
            out = dict(observation)
            out["observation"] = self.perturb(np.array(observation["observation"], copy=True))
            return out
        return self.perturb(np.array(observation, copy=True))

    def perturb(self, core: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class ObservationNoise(_ObsWrapper):
    """Adds Gaussian noise of std ``sigma`` to the robot's own observation vector (not to goals)."""

    def __init__(self, env: gym.Env, sigma: float, seed: int = 0) -> None:
        super().__init__(env)
        self.sigma = float(sigma)
        self.rng = np.random.default_rng(seed)

    def perturb(self, core: np.ndarray) -> np.ndarray:
        """Noisy copy, clipped to the space bounds."""
        noisy = core + self.rng.normal(0.0, self.sigma, size=core.shape).astype(core.dtype)
        return np.clip(noisy, -2.0, 2.0).astype(core.dtype)


class SensorDropout(_ObsWrapper):
    """Each range ray independently reads "nothing in range" (1.0) with probability ``p``."""

    def __init__(self, env: gym.Env, p: float, seed: int = 0) -> None:
        super().__init__(env)
        self.p = float(p)
        nav: Any = env.unwrapped  # a NavEnv
        self.n_rays = nav.config.n_rays
        self.rng = np.random.default_rng(seed)

    def perturb(self, core: np.ndarray) -> np.ndarray:
        """Copy with dropped rays set to the maximum range."""
        drop = self.rng.random(self.n_rays) < self.p
        core[: self.n_rays][drop] = 1.0
        return core


class ActionDelay(gym.Wrapper):
    """Executes the action chosen ``delay`` steps earlier (zero / "stop" action before that)."""

    def __init__(self, env: gym.Env, delay: int) -> None:
        super().__init__(env)
        self.delay = int(delay)
        self.queue: deque[Any] = deque()

    def _idle(self) -> Any:
        space = self.env.action_space
        if isinstance(space, gym.spaces.Discrete):
            nav: Any = self.env.unwrapped  # a NavEnv
            table = nav._discrete_table()
            return int(np.argmin(np.linalg.norm(table, axis=1)))  # the slowest action
        return np.zeros(space.shape, dtype=space.dtype)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset and fill the delay queue with idle actions."""
        self.queue = deque([self._idle()] * self.delay)
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Queue ``action``, execute the oldest."""
        self.queue.append(action)
        return self.env.step(self.queue.popleft())


def wrap(env: gym.Env, kind: str, level: float, seed: int = 0) -> gym.Env:
    """Apply one perturbation: ``noise`` (sigma), ``delay`` (steps), ``dropout`` (probability), ``none``."""
    if kind == "none" or level == 0:
        return env
    if kind == "noise":
        return ObservationNoise(env, level, seed)
    if kind == "delay":
        return ActionDelay(env, int(level))
    if kind == "dropout":
        return SensorDropout(env, level, seed)
    raise ValueError(f"unknown perturbation {kind!r} (allowed: none, noise, delay, dropout)")
