"""Multi-robot navigation: the learner plus ``n_others`` robots that drive to goals of their own.

:class:`MultiRobotNavEnv` is a :class:`~mlcore_nav_rl.envs.NavEnv` (same observation and action
spaces, same reward) whose extra "obstacles" are robots of the learner's size. How they move:

- ``opponents="league"``: each robot is a frozen past snapshot of the learner drawn from a
  :class:`~mlcore_nav_rl.selfplay.league.League` at every reset; it sees the world exactly as the
  learner does (its own range sensors, its own goal) and acts through the snapshot's policy.
- ``opponents="greedy"``: scripted goal-seekers that drive straight to their goals at
  ``other_speed`` and ignore everyone (used as the *unseen* robots of the comparison).
- ``opponents="constant"``: scripted obstacles with constant velocity, bouncing off walls (the
  baseline's training setting).

Other robots are blocked (stay in place) by walls, static obstacles and each other, but not by the
learner: a robot driving into the learner is the learner's collision. When one reaches its goal it
gets a new one, so traffic never stops. ``info["opponents"]`` lists the league member ids met.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlcore_nav_rl.envs.nav_env import NavEnv, NavEnvConfig
from mlcore_nav_rl.selfplay.league import League

OPPONENT_KINDS = ("league", "greedy", "constant")


class MultiRobotNavEnv(NavEnv):
    """The learner among ``n_others`` robots controlled by league snapshots or scripts (point robots)."""

    def __init__(
        self,
        config: NavEnvConfig | None = None,
        *,
        n_others: int = 2,
        opponents: str = "league",
        league: League | None = None,
        other_speed: float = 0.6,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(config, render_mode, **overrides)
        if self.config.robot != "point":
            raise ValueError(f"MultiRobotNavEnv needs robot='point', got {self.config.robot!r}")
        if opponents not in OPPONENT_KINDS:
            raise ValueError(f"opponents={opponents!r} is not one of {', '.join(OPPONENT_KINDS)}")
        if opponents == "league" and league is None:
            raise ValueError("opponents='league' needs a league")
        self.n_others = n_others
        self.opponents = opponents
        self.league = league
        self.other_speed = other_speed
        self.other_goals = np.zeros((n_others, 2))
        self.other_ids: list[int] = []
        self._other_policies: list[Any] = []

    # indices of the other robots inside the obstacle arrays
    @property
    def _first_other(self) -> int:
        return self.config.n_static + self.config.n_moving

    def _new_layout(self) -> None:
        super()._new_layout()
        cfg = self.config
        rng = self.np_random
        taken = [(self.pos, cfg.robot_radius + 0.3), *((g, cfg.goal_radius) for g in self.goals)]
        taken += list(zip(self.obs_pos, self.obs_rad, strict=True))
        pos = []
        for _ in range(self.n_others):
            p = self._sample_free(rng, taken, cfg.robot_radius)
            pos.append(p)
            taken.append((p, cfg.robot_radius))
        self.other_goals = np.array([self._sample_free(rng, [], cfg.goal_radius) for _ in range(self.n_others)])
        if self.n_others:
            angle = rng.uniform(0, 2 * np.pi, size=self.n_others)
            vel = np.stack([np.cos(angle), np.sin(angle)], axis=1) * self.other_speed
            self.obs_pos = np.vstack([self.obs_pos, np.array(pos)])
            self.obs_vel = np.vstack([self.obs_vel, vel if self.opponents == "constant" else np.zeros_like(vel)])
            self.obs_rad = np.concatenate([self.obs_rad, np.full(self.n_others, cfg.robot_radius)])
        if self.opponents == "league":
            assert self.league is not None
            members = self.league.sample(rng, self.n_others)
            self.other_ids = [m.member_id for m in members]
            self._other_policies = [m.policy for m in members]
        else:
            self.other_ids, self._other_policies = [], []

    def observe_other(self, j: int) -> np.ndarray:
        """Robot ``j``'s own observation (its sensors see the learner and the other robots)."""
        i = self._first_other + j
        saved = (self.pos, self.vel, self.goals, self.goal_idx, self.obs_pos, self.obs_rad, self._ranges)
        keep = np.arange(len(self.obs_rad)) != i
        self.obs_pos = np.vstack([self.obs_pos[keep], saved[0][None]])
        self.obs_rad = np.concatenate([self.obs_rad[keep], [self.config.robot_radius]])
        self.pos, self.vel = saved[4][i].copy(), self.obs_vel[i].copy()
        self.goals = np.tile(self.other_goals[j], (self.config.n_goals, 1))
        self.goal_idx = 0
        try:
            self._ranges = self._cast_rays()
            return self._get_obs()
        finally:
            self.pos, self.vel, self.goals, self.goal_idx, self.obs_pos, self.obs_rad, self._ranges = saved

    def _other_velocities(self) -> np.ndarray:
        first = self._first_other
        if self.opponents == "constant":
            return self.obs_vel[first:]
        if self.opponents == "greedy":
            d = self.other_goals - self.obs_pos[first:]
            n = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
            return d / n * self.other_speed
        vels = []
        for j, policy in enumerate(self._other_policies):
            action, _ = policy.predict(self.observe_other(j)[None], deterministic=True)
            vels.append(self._action_velocity(np.asarray(action)[0]))
        return np.array(vels).reshape(self.n_others, 2)

    def _action_velocity(self, action: Any) -> np.ndarray:
        cfg = self.config
        if cfg.action_type == "discrete":
            a = self._discrete_table()[int(action)]
        else:
            a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        v = a * cfg.max_speed
        n = np.linalg.norm(v)
        return v * (cfg.max_speed / n) if n > cfg.max_speed else v

    def _move_obstacles(self) -> None:
        first = self._first_other
        vel = self._other_velocities() if self.n_others else np.zeros((0, 2))
        others_pos = self.obs_pos[first:].copy()
        # scripted obstacles of the base env (n_moving) move and bounce as usual
        if self.config.n_moving:
            n = first
            self.obs_pos, self.obs_vel, self.obs_rad, full = (
                self.obs_pos[:n],
                self.obs_vel[:n],
                self.obs_rad[:n],
                (self.obs_pos, self.obs_vel, self.obs_rad),
            )
            super()._move_obstacles()
            self.obs_pos = np.vstack([self.obs_pos, full[0][n:]])
            self.obs_vel = np.vstack([self.obs_vel, full[1][n:]])
            self.obs_rad = full[2]
        cfg = self.config
        r = cfg.robot_radius
        for j in range(self.n_others):
            i = first + j
            new = others_pos[j] + vel[j] * cfg.dt
            blocked = bool(np.any(new < r) or np.any(new > cfg.arena_size - r))
            others = np.arange(len(self.obs_rad)) != i
            if not blocked and others.any():
                d = np.linalg.norm(self.obs_pos[others] - new, axis=1)
                blocked = bool(np.any(d < self.obs_rad[others] + r))
            if self.opponents == "constant" and blocked:
                self.obs_vel[i] = -vel[j]  # bounce back
                continue
            if blocked:
                self.obs_vel[i] = 0.0
                continue
            self.obs_pos[i] = new
            self.obs_vel[i] = vel[j]
            if np.linalg.norm(self.other_goals[j] - new) < cfg.goal_radius:
                self.other_goals[j] = self._sample_free(self.np_random, [], cfg.goal_radius)

    def _info(self, reached: bool) -> dict[str, Any]:
        info = super()._info(reached)
        info["opponents"] = list(self.other_ids)
        return info
