"""A 2-D robot navigation environment (gymnasium).

The robot (a disc) drives in a square arena towards one or several sequential goals while
avoiding static and moving circular obstacles. It senses its surroundings with ``n_rays``
range sensors (ray casting against circles and walls, vectorised with numpy).

- ``robot="point"``: holonomic robot, action = desired velocity ``(vx, vy)`` in ``[-1, 1]^2``.
- ``robot="diff_drive"``: differential drive, action = ``(v, omega)`` in ``[-1, 1]^2`` (unicycle model).
- ``action_type="discrete"``: a fixed set of action vectors (for DQN).
- ``reward="shaped"``: progress towards the goal, goal bonus, collision penalty, small step cost.
  ``reward="sparse"``: +1 per goal reached, -1 on collision, 0 otherwise.

:class:`NavEnv` has a flat ``Box`` observation. :class:`NavGoalEnv` is the goal-conditioned
variant with ``Dict(observation, achieved_goal, desired_goal)`` observations and vectorised
``compute_reward`` / ``compute_terminated`` / ``compute_truncated`` for SB3's ``HerReplayBuffer``.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mlcore.config import in_range, one_of, positive

#: Discrete action set: 8 compass directions at full speed plus "stop" (point robot), or
#: (v, omega) pairs for the differential drive.
_DISCRETE_POINT = np.array(
    [[math.cos(a), math.sin(a)] for a in np.linspace(0, 2 * math.pi, 8, endpoint=False)] + [[0.0, 0.0]],
    dtype=np.float32,
)
_DISCRETE_DIFF = np.array(
    [[1.0, 0.0], [1.0, 0.5], [1.0, -0.5], [0.5, 1.0], [0.5, -1.0], [0.0, 1.0], [0.0, -1.0], [-0.5, 0.0]],
    dtype=np.float32,
)


@attrs.define
class NavEnvConfig:
    """Configuration of the navigation environment (one curriculum stage is a subset of these fields)."""

    robot: str = attrs.field(default="point", validator=one_of("point", "diff_drive"))
    action_type: str = attrs.field(default="continuous", validator=one_of("continuous", "discrete"))
    reward: str = attrs.field(default="shaped", validator=one_of("shaped", "sparse"))
    arena_size: float = attrs.field(default=4.0, validator=positive)
    n_static: int = attrs.field(default=3, validator=in_range(0, 32))
    n_moving: int = attrs.field(default=0, validator=in_range(0, 32))
    n_goals: int = attrs.field(default=1, validator=in_range(1, 16))
    max_steps: int = attrs.field(default=200, validator=positive)
    n_rays: int = attrs.field(default=16, validator=in_range(1, 360))
    max_range: float = attrs.field(default=2.0, validator=positive)
    robot_radius: float = attrs.field(default=0.15, validator=positive)
    obstacle_radius: tuple[float, float] = (0.2, 0.4)
    obstacle_speed: float = attrs.field(default=0.3, validator=in_range(0.0))
    goal_radius: float = attrs.field(default=0.3, validator=positive)
    max_speed: float = attrs.field(default=1.0, validator=positive)
    max_turn_rate: float = attrs.field(default=2.0, validator=positive)
    dt: float = attrs.field(default=0.1, validator=positive)
    terminate_on_collision: bool = True
    #: 0 = a fresh random layout every episode; N > 0 = layouts drawn from N fixed layouts
    #: (ids ``layout_offset .. layout_offset + N - 1``), so unseen layouts can be tested.
    layout_pool: int = attrs.field(default=0, validator=in_range(0))
    layout_offset: int = attrs.field(default=0, validator=in_range(0))
    progress_scale: float = 1.0
    goal_bonus: float = 10.0
    collision_penalty: float = 10.0
    step_cost: float = 0.01

    def __attrs_post_init__(self) -> None:
        lo, hi = self.obstacle_radius
        if not 0 < lo <= hi:
            raise ValueError(f"obstacle_radius={self.obstacle_radius!r} must satisfy 0 < min <= max")


#: Fields a curriculum stage may change through :meth:`NavEnv.set_stage`.
STAGE_FIELDS = (
    "n_static",
    "n_moving",
    "n_goals",
    "max_steps",
    "obstacle_speed",
    "reward",
    "layout_pool",
    "layout_offset",
)


class NavEnv(gym.Env):
    """2-D navigation with range sensors; flat ``Box`` observations.

    Observation (all scaled to roughly ``[-1, 1]``): ``n_rays`` normalised ranges, the current
    goal in the robot frame divided by the arena size (2), its distance (1), the robot velocity
    divided by ``max_speed`` (2), ``sin``/``cos`` of the heading (2), and the fraction of goals
    left (1).

    Example::

        env = NavEnv(NavEnvConfig(n_moving=2, n_goals=3))
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 (an instance attribute in gym.Env)

    def __init__(self, config: NavEnvConfig | None = None, render_mode: str | None = None, **overrides: Any) -> None:
        cfg = config or NavEnvConfig()
        if overrides:
            cfg = attrs.evolve(cfg, **overrides)
        self.config = cfg
        self.render_mode = render_mode
        angles = np.linspace(0.0, 2 * math.pi, cfg.n_rays, endpoint=False)
        self._ray_angles = angles
        self.action_space = self._make_action_space()
        self.observation_space = self._make_observation_space()
        self._pending: NavEnvConfig | None = None
        # state (filled by reset)
        self.pos = np.zeros(2)
        self.heading = 0.0
        self.vel = np.zeros(2)
        self.obs_pos = np.zeros((0, 2))
        self.obs_vel = np.zeros((0, 2))
        self.obs_rad = np.zeros(0)
        self.goals = np.zeros((1, 2))
        self.goal_idx = 0
        self.steps = 0
        self.path_length = 0.0
        self.optimal_length = 0.0
        self.collided = False
        self.n_collisions = 0
        self._ranges = np.ones(cfg.n_rays) * cfg.max_range

    # ------------------------------------------------------------------ spaces
    def _make_action_space(self) -> spaces.Space:
        if self.config.action_type == "discrete":
            return spaces.Discrete(len(self._discrete_table()))
        return spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def _discrete_table(self) -> np.ndarray:
        return _DISCRETE_POINT if self.config.robot == "point" else _DISCRETE_DIFF

    @property
    def obs_dim(self) -> int:
        """Length of the flat observation vector."""
        return self.config.n_rays + 8

    def _make_observation_space(self) -> spaces.Space:
        return spaces.Box(-2.0, 2.0, shape=(self.obs_dim,), dtype=np.float32)

    # ------------------------------------------------------------------ curriculum
    def set_stage(self, **fields: Any) -> None:
        """Change stage fields (obstacles, goals, step budget, ...); applies from the next ``reset``.

        Called by the curriculum through ``VecEnv.env_method("set_stage", ...)``.
        """
        unknown = sorted(set(fields) - set(STAGE_FIELDS))
        if unknown:
            raise ValueError(f"set_stage: unknown field(s) {unknown} (allowed: {', '.join(STAGE_FIELDS)})")
        self._pending = attrs.evolve(self._pending or self.config, **fields)

    def get_stage(self) -> dict[str, Any]:
        """The current values of the stage fields."""
        cfg = self._pending or self.config
        return {k: getattr(cfg, k) for k in STAGE_FIELDS}

    # ------------------------------------------------------------------ layout
    def _layout_rng(self) -> np.random.Generator:
        cfg = self.config
        if cfg.layout_pool > 0:
            layout_id = cfg.layout_offset + int(self.np_random.integers(cfg.layout_pool))
            return np.random.default_rng([7919, layout_id])
        return self.np_random

    def _sample_free(
        self, rng: np.random.Generator, taken: list[tuple[np.ndarray, float]], radius: float
    ) -> np.ndarray:
        cfg = self.config
        margin = radius + 0.05
        p = rng.uniform(margin, cfg.arena_size - margin, size=2)
        for _ in range(200):
            if all(np.linalg.norm(p - q) > radius + r + 0.1 for q, r in taken):
                break
            p = rng.uniform(margin, cfg.arena_size - margin, size=2)
        return p

    def _new_layout(self) -> None:
        cfg = self.config
        rng = self._layout_rng()
        self.pos = rng.uniform(cfg.robot_radius + 0.1, cfg.arena_size - cfg.robot_radius - 0.1, size=2)
        taken: list[tuple[np.ndarray, float]] = [(self.pos, cfg.robot_radius + 0.3)]
        goals = []
        prev = self.pos
        for _ in range(cfg.n_goals):
            g = prev
            for _ in range(50):  # goals at least a third of the arena apart
                g = self._sample_free(rng, taken, cfg.goal_radius)
                if np.linalg.norm(g - prev) > cfg.arena_size / 3:
                    break
            goals.append(g)
            taken.append((g, cfg.goal_radius))
            prev = g
        self.goals = np.array(goals, dtype=np.float64)
        n_obs = cfg.n_static + cfg.n_moving
        lo, hi = cfg.obstacle_radius
        rad = rng.uniform(lo, hi, size=n_obs)
        centers = []
        for r in rad:
            c = self._sample_free(rng, taken, r)
            centers.append(c)
            taken.append((c, r))
        self.obs_pos = np.array(centers, dtype=np.float64).reshape(n_obs, 2)
        self.obs_rad = rad
        angle = rng.uniform(0, 2 * math.pi, size=n_obs)
        speed = rng.uniform(0.5, 1.0, size=n_obs) * cfg.obstacle_speed
        self.obs_vel = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]
        self.obs_vel[: cfg.n_static] = 0.0
        self.heading = float(rng.uniform(-math.pi, math.pi)) if cfg.robot == "diff_drive" else 0.0
        # with a fixed layout pool the start is fixed too; otherwise it was drawn from np_random already

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode (a pending stage change takes effect here)."""
        super().reset(seed=seed)
        if self._pending is not None:
            self.config = self._pending
            self._pending = None
            self.action_space = self._make_action_space()
        if options and "layout_id" in options:
            cfg = self.config
            self.config = attrs.evolve(cfg, layout_pool=1, layout_offset=int(options["layout_id"]))
            self._new_layout()
            self.config = cfg
        else:
            self._new_layout()
        self.vel = np.zeros(2)
        self.goal_idx = 0
        self.steps = 0
        self.path_length = 0.0
        self.collided = False
        self.n_collisions = 0
        pts = np.vstack([self.pos[None], self.goals])
        self.optimal_length = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
        self._prev_dist = self._goal_dist()
        self._ranges = self._cast_rays()
        return self._get_obs(), self._info(False)

    def _goal_dist(self) -> float:
        return float(np.linalg.norm(self.goals[min(self.goal_idx, self.config.n_goals - 1)] - self.pos))

    def _to_velocity(self, action: Any) -> np.ndarray:
        cfg = self.config
        if cfg.action_type == "discrete":
            a = self._discrete_table()[int(action)]
        else:
            a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        if cfg.robot == "point":
            v = a * cfg.max_speed
            n = np.linalg.norm(v)
            if n > cfg.max_speed:
                v *= cfg.max_speed / n
            return v
        self.heading = float((self.heading + a[1] * cfg.max_turn_rate * cfg.dt + math.pi) % (2 * math.pi) - math.pi)
        return a[0] * cfg.max_speed * np.array([math.cos(self.heading), math.sin(self.heading)])

    def _move_obstacles(self) -> None:
        cfg = self.config
        if cfg.n_moving == 0:
            return
        self.obs_pos += self.obs_vel * cfg.dt
        lo = self.obs_rad[:, None]
        hi = cfg.arena_size - self.obs_rad[:, None]
        bounce = (self.obs_pos < lo) | (self.obs_pos > hi)
        self.obs_vel[bounce] *= -1.0
        self.obs_pos = np.clip(self.obs_pos, lo, hi)

    def _collides(self) -> bool:
        cfg = self.config
        r = cfg.robot_radius
        if np.any(self.pos < r) or np.any(self.pos > cfg.arena_size - r):
            return True
        if len(self.obs_rad) == 0:
            return False
        d = np.linalg.norm(self.obs_pos - self.pos, axis=1)
        return bool(np.any(d < self.obs_rad + r))

    def _cast_rays(self) -> np.ndarray:
        """Distances along each ray to the nearest obstacle or wall, capped at ``max_range``."""
        cfg = self.config
        ang = self._ray_angles + self.heading
        d = np.stack([np.cos(ang), np.sin(ang)], axis=1)  # (R, 2)
        p = self.pos
        with np.errstate(divide="ignore", invalid="ignore"):
            tx = np.where(
                d[:, 0] > 0, (cfg.arena_size - p[0]) / d[:, 0], np.where(d[:, 0] < 0, -p[0] / d[:, 0], np.inf)
            )
            ty = np.where(
                d[:, 1] > 0, (cfg.arena_size - p[1]) / d[:, 1], np.where(d[:, 1] < 0, -p[1] / d[:, 1], np.inf)
            )
        t = np.minimum(tx, ty)
        if len(self.obs_rad):
            oc = self.obs_pos - p  # (M, 2)
            b = d @ oc.T  # (R, M): projection of the centre on the ray
            c = (oc * oc).sum(1) - self.obs_rad**2  # (M,)
            disc = b * b - c[None, :]
            with np.errstate(invalid="ignore"):
                hit = b - np.sqrt(np.where(disc >= 0, disc, 0.0))
            valid = (disc >= 0) & (hit >= 0)
            hit = np.where(c[None, :] < 0, 0.0, hit)  # inside an obstacle
            valid |= c[None, :] < 0
            t = np.minimum(t, np.where(valid, hit, np.inf).min(axis=1))
        return np.clip(t, 0.0, cfg.max_range)

    def _robot_frame(self, v: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.heading), math.sin(self.heading)
        return np.array([c * v[0] + s * v[1], -s * v[0] + c * v[1]])

    def _get_obs(self) -> Any:
        cfg = self.config
        gi = min(self.goal_idx, cfg.n_goals - 1)
        rel = self._robot_frame(self.goals[gi] - self.pos) / cfg.arena_size
        obs = np.concatenate(
            [
                self._ranges / cfg.max_range,
                rel,
                [np.linalg.norm(rel)],
                self._robot_frame(self.vel) / cfg.max_speed,
                [math.sin(self.heading), math.cos(self.heading)],
                [(cfg.n_goals - self.goal_idx) / cfg.n_goals],
            ]
        )
        return np.clip(obs, -2.0, 2.0).astype(np.float32)

    def _info(self, reached: bool) -> dict[str, Any]:
        return {
            "is_success": self.goal_idx >= self.config.n_goals,
            "collision": self.n_collisions > 0,
            "collisions": self.n_collisions,
            "goals_reached": self.goal_idx,
            "goal_reached": reached,
            "path_length": self.path_length,
            "optimal_length": self.optimal_length,
        }

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Advance one ``dt``: move robot and obstacles, sense, check goals and collisions."""
        cfg = self.config
        self.vel = self._to_velocity(action)
        old = self.pos.copy()
        self.pos = self.pos + self.vel * cfg.dt
        self.path_length += float(np.linalg.norm(self.pos - old))
        self._move_obstacles()
        self.steps += 1
        self.collided = self._collides()
        self.n_collisions += int(self.collided)
        dist = self._goal_dist()
        reached = dist < cfg.goal_radius and not self.collided
        progress = self._prev_dist - dist
        if reached:
            self.goal_idx += 1
        success = self.goal_idx >= cfg.n_goals
        if not success:
            self._prev_dist = self._goal_dist()
        if cfg.reward == "shaped":
            reward = cfg.progress_scale * progress / (cfg.max_speed * cfg.dt) * 0.1 - cfg.step_cost
            reward += cfg.goal_bonus * reached - cfg.collision_penalty * self.collided
        else:
            reward = float(reached) - float(self.collided)
        terminated = success or (self.collided and cfg.terminate_on_collision)
        truncated = (not terminated) and self.steps >= cfg.max_steps
        if self.collided and not cfg.terminate_on_collision:
            self.pos = old  # blocked
        self._ranges = self._cast_rays()
        return self._get_obs(), float(reward), bool(terminated), bool(truncated), self._info(reached)

    # ------------------------------------------------------------------ rendering
    def render(self) -> np.ndarray | None:
        """An ``(H, W, 3)`` uint8 frame when ``render_mode="rgb_array"``."""
        if self.render_mode != "rgb_array":
            return None
        from mlcore_nav_rl.envs.render import draw_frame

        return draw_frame(self)


class NavGoalEnv(NavEnv):
    """Goal-conditioned navigation: ``Dict(observation, achieved_goal, desired_goal)`` for HER.

    Goals are positions divided by the arena size. The episode does **not** end when a goal is
    reached unless ``terminate_on_success``; with several goals, reaching one switches the
    desired goal to the next. Collisions are goal-independent events, so relabelled transitions
    stay consistent; with HER's sparse ``-1`` reward use ``terminate_on_collision=False`` (the
    robot is blocked instead), otherwise ending the episode early by crashing looks attractive.
    ``compute_reward`` is vectorised over batches of goals; sparse: ``-1`` until within
    ``goal_radius``, then ``0``; shaped: ``-distance / arena_size``.
    """

    def __init__(
        self,
        config: NavEnvConfig | None = None,
        render_mode: str | None = None,
        terminate_on_success: bool = False,
        **overrides: Any,
    ) -> None:
        self.terminate_on_success = terminate_on_success
        super().__init__(config, render_mode, **overrides)

    def _make_observation_space(self) -> spaces.Space:
        n = self.config.n_rays + 6
        goal = spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        return spaces.Dict(
            {
                "observation": spaces.Box(-2.0, 2.0, shape=(n,), dtype=np.float32),
                "achieved_goal": goal,
                "desired_goal": spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32),
            }
        )

    def _get_obs(self) -> Any:
        cfg = self.config
        core = np.concatenate(
            [
                self._ranges / cfg.max_range,
                self.pos / cfg.arena_size,
                self._robot_frame(self.vel) / cfg.max_speed,
                [math.sin(self.heading), math.cos(self.heading)],
            ]
        )
        return {
            "observation": np.clip(core, -2.0, 2.0).astype(np.float32),
            "achieved_goal": np.clip(self.pos / cfg.arena_size, 0.0, 1.0).astype(np.float32),
            "desired_goal": self._desired_goal(),
        }

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorised reward for (batches of) achieved/desired goals."""
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1) * self.config.arena_size
        if self.config.reward == "sparse":
            return -(d >= self.config.goal_radius).astype(np.float32)
        return (-d / self.config.arena_size).astype(np.float32)

    def compute_terminated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorised termination by goal (only when ``terminate_on_success``)."""
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1) * self.config.arena_size
        return (d < self.config.goal_radius) & self.terminate_on_success

    def compute_truncated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorised truncation: never goal-dependent (the step budget is handled by ``step``)."""
        return np.zeros(np.asarray(achieved_goal).shape[:-1], dtype=bool)

    def _desired_goal(self) -> np.ndarray:
        return (self.goals[min(self.goal_idx, self.config.n_goals - 1)] / self.config.arena_size).astype(np.float32)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the base dynamics; the reward is :meth:`compute_reward` of the returned (float32, clipped)
        ``achieved_goal`` and the ``desired_goal`` the agent saw before the step, so a relabelled
        transition recomputes exactly the stored reward."""
        desired = self._desired_goal()
        obs, _, terminated, truncated, info = super().step(action)
        reward = float(self.compute_reward(obs["achieved_goal"], desired, info))
        success = info["is_success"]
        if success and not self.terminate_on_success and not self.collided:
            terminated = False
            self.goal_idx = self.config.n_goals - 1  # stay on the last goal; success is sticky below
            self._sticky_success = True
        info["is_success"] = bool(success or getattr(self, "_sticky_success", False))
        truncated = (not terminated) and self.steps >= self.config.max_steps
        return obs, reward, bool(terminated), bool(truncated), info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode."""
        self._sticky_success = False
        return super().reset(seed=seed, options=options)
