"""Baseline policies: uniform random actions and a scripted potential-field planner.

Both work on the flat observation of :class:`~mlcore_nav_rl.envs.NavEnv` (and on the
goal-conditioned Dict observation, which is converted). The potential-field planner only uses
what the robot senses: the range readings repel, the goal (in the robot frame) attracts
(Khatib, 1986); local minima are its known weakness.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class RandomPolicy:
    """Samples the action space (seeded)."""

    def __init__(self, action_space: Any, seed: int = 0) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        """One random action (SB3 ``predict`` signature)."""
        return self.action_space.sample(), None


class PotentialFieldPolicy:
    """Attractive goal force plus repulsive forces from every range ray shorter than ``influence``.

    Args:
        env: the (unwrapped) environment, read for its configuration only (ray angles, ranges, robot type).
        attraction: gain of the unit vector towards the goal.
        repulsion: gain of ``(1/d - 1/influence) / d^2`` along each short ray, pointing away.
        influence: distance (m) under which obstacles repel.
    """

    def __init__(self, env: Any, attraction: float = 1.0, repulsion: float = 0.08, influence: float = 0.6) -> None:
        base = getattr(env, "unwrapped", env)
        self.cfg = base.config
        self.angles = np.asarray(base._ray_angles)
        self.goal_conditioned = hasattr(base, "compute_reward")
        self.attraction, self.repulsion, self.influence = attraction, repulsion, influence
        self._discrete = None
        if self.cfg.action_type == "discrete":
            self._discrete = base._discrete_table()

    def _force(self, obs: Any) -> tuple[np.ndarray, float]:
        cfg = self.cfg
        n = cfg.n_rays
        if self.goal_conditioned:  # Dict observation: goal relative to the robot in the robot frame
            core = np.asarray(obs["observation"])
            sin_h, cos_h = core[n + 4], core[n + 5]
            delta = (np.asarray(obs["desired_goal"]) - np.asarray(obs["achieved_goal"])) * cfg.arena_size
            goal = np.array([cos_h * delta[0] + sin_h * delta[1], -sin_h * delta[0] + cos_h * delta[1]])
        else:
            core = np.asarray(obs)
            goal = core[n : n + 2] * cfg.arena_size
        ranges = np.maximum(core[:n] * cfg.max_range - cfg.robot_radius, 1e-3)
        dist = float(np.linalg.norm(goal))
        force = self.attraction * goal / max(dist, 1e-6)
        close = ranges < self.influence
        if close.any():
            mag = self.repulsion * (1.0 / ranges[close] - 1.0 / self.influence) / ranges[close] ** 2
            dirs = np.stack([np.cos(self.angles[close]), np.sin(self.angles[close])], axis=1)
            force -= (mag[:, None] * dirs).sum(axis=0)
        return force, dist

    def action(self, obs: Any) -> np.ndarray | int:
        """The planner's action for one observation."""
        force, dist = self._force(obs)
        norm = float(np.linalg.norm(force))
        direction = force / norm if norm > 1e-9 else np.zeros(2)
        if self.cfg.robot == "point":
            # slow down near the goal so it is not overshot
            act = direction if self._discrete is not None else direction * min(1.0, max(dist, 0.3))
        else:  # force is in the robot frame: turn towards it, drive when roughly aligned
            angle = math.atan2(direction[1], direction[0])
            act = np.array([max(math.cos(angle), 0.0), np.clip(2.0 * angle, -1.0, 1.0)])
        act = np.clip(act, -1.0, 1.0).astype(np.float32)
        if self._discrete is not None:
            return int(np.argmin(np.linalg.norm(self._discrete - act[None], axis=1)))
        return act

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        """SB3 ``predict`` signature (one, unbatched observation)."""
        return self.action(obs), None
