"""Tests of the navigation environments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mlcore_nav_rl.envs import NavEnv, NavEnvConfig, NavGoalEnv, make_vec_env
from mlcore_nav_rl.envs.render import write_gif


@pytest.mark.filterwarnings("ignore:.*alternative render modes")
@pytest.mark.parametrize("cls", [NavEnv, NavGoalEnv])
@pytest.mark.parametrize("robot", ["point", "diff_drive"])
@pytest.mark.parametrize("action_type", ["continuous", "discrete"])
def test_check_env_passes(cls, robot, action_type):
    env = cls(NavEnvConfig(robot=robot, action_type=action_type, n_moving=2, n_goals=2), render_mode="rgb_array")
    check_env(env, skip_render_check=False)


GOAL_VARIANTS = [
    {"robot": robot, "action_type": action, "reward": reward}
    for robot in ("point", "diff_drive")
    for action in ("continuous", "discrete")
    for reward in ("sparse", "shaped")
]


@pytest.mark.filterwarnings("ignore:.*alternative render modes", "ignore:.*is not within the observation space")
@pytest.mark.parametrize("fields", GOAL_VARIANTS, ids=lambda f: "-".join(f.values()))
def test_goal_env_passes_both_checkers_over_many_seeds(fields):
    """SB3's checker compares every step's reward with ``compute_reward`` (exact equality), seed after seed."""
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for seed in range(25):
        for terminate_on_success in (False, True):
            env = NavGoalEnv(NavEnvConfig(**fields), terminate_on_success=terminate_on_success)
            env.reset(seed=seed)
            env.action_space.seed(seed)
            sb3_check_env(env, warn=False)
    check_env(NavGoalEnv(NavEnvConfig(**fields)))


@pytest.mark.parametrize("reward", ["sparse", "shaped"])
def test_goal_env_reward_equals_compute_reward_of_its_observations(reward):
    """Every step's reward is ``compute_reward(next achieved_goal, desired_goal seen before the step)``, bit for bit."""
    env = NavGoalEnv(NavEnvConfig(reward=reward, n_goals=3, n_static=0, arena_size=2.0, max_steps=60))
    steps = switches = 0
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            # head for the goal (so goals are reached and switched), with noise
            delta = obs["desired_goal"] - obs["achieved_goal"]
            action = np.clip(delta / (np.abs(delta).max() + 1e-9) + env.np_random.normal(0, 0.3, 2), -1, 1)
            nxt, r, term, trunc, info = env.step(action.astype(np.float32))
            assert r == float(env.compute_reward(nxt["achieved_goal"], obs["desired_goal"], info))
            if np.array_equal(nxt["desired_goal"], obs["desired_goal"]):
                assert r == env.compute_reward(nxt["achieved_goal"], nxt["desired_goal"], info)  # SB3's convention
            else:
                switches += 1
            obs, done, steps = nxt, term or trunc, steps + 1
    assert steps > 1000 and switches > 10


def _rollout(env, seed, n=60):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(n):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        out.append(np.append(obs, r))
        if term or trunc:
            out.append(env.reset()[0])
    return np.concatenate([np.ravel(o) for o in out])


def test_deterministic_per_seed():
    cfg = NavEnvConfig(n_moving=3, n_goals=2)
    a = _rollout(NavEnv(cfg), 5)
    b = _rollout(NavEnv(cfg), 5)
    c = _rollout(NavEnv(cfg), 6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[: len(c)], c[: len(a)])


def test_ray_casting_matches_geometry():
    env = NavEnv(NavEnvConfig(n_static=0, n_rays=4, max_range=10.0))
    env.reset(seed=0)
    env.pos = np.array([1.0, 1.5])
    env.obs_pos = np.array([[3.0, 1.5]])
    env.obs_rad = np.array([0.5])
    r = env._cast_rays()
    # ray 0 (+x) hits the circle at x = 2.5; ray 1 (+y) the wall y=4; ray 2 (-x) the wall x=0; ray 3 (-y) y=0
    assert r == pytest.approx([1.5, 2.5, 1.0, 1.5])


def test_goal_reached_and_collision_rewards():
    env = NavEnv(NavEnvConfig(n_static=1, reward="sparse"))
    env.reset(seed=1)
    env.pos = env.goals[0] - np.array([0.35, 0.0])
    env.obs_pos = np.array([[0.5, 0.5]])
    env._prev_dist = env._goal_dist()
    _, r, term, trunc, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert r == 1.0 and term and info["is_success"] and not trunc
    env.reset(seed=1)
    env.pos = env.obs_pos[0] + np.array([env.obs_rad[0] + env.config.robot_radius + 0.05, 0.0])
    _, r, term, _, info = env.step(np.array([-1.0, 0.0], dtype=np.float32))
    assert r == -1.0 and term and info["collision"] and not info["is_success"]


def test_shaped_reward_rewards_progress():
    env = NavEnv(NavEnvConfig(n_static=0))
    env.reset(seed=2)
    to_goal = env.goals[0] - env.pos
    a = (to_goal / np.linalg.norm(to_goal)).astype(np.float32)
    _, r_towards, *_ = env.step(a)
    env.reset(seed=2)
    _, r_away, *_ = env.step(-a)
    assert r_towards > 0 > r_away


def test_step_budget_truncates():
    env = NavEnv(NavEnvConfig(n_static=0, max_steps=5))
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, dtype=np.float32))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_sequential_goals_and_moving_obstacles():
    env = NavEnv(NavEnvConfig(n_static=0, n_moving=2, n_goals=3, reward="sparse"))
    env.reset(seed=3)
    start = env.obs_pos.copy()
    for k in range(3):
        env.pos = env.goals[k] + np.array([0.05, 0.0])
        env.obs_pos = np.array([[0.3, 0.3], [3.7, 3.7]])
        _, r, term, _, info = env.step(np.zeros(2, dtype=np.float32))
        assert r == 1.0 and info["goals_reached"] == k + 1
        assert term == (k == 2)
    assert not np.allclose(start, env.obs_pos)


def test_diff_drive_turns_and_moves_forward():
    env = NavEnv(NavEnvConfig(robot="diff_drive", n_static=0))
    env.reset(seed=0)
    h0, p0 = env.heading, env.pos.copy()
    env.step(np.array([1.0, 1.0], dtype=np.float32))
    assert env.heading == pytest.approx(h0 + 0.2, abs=1e-9) or abs(env.heading - h0) > math.pi
    assert np.linalg.norm(env.pos - p0) == pytest.approx(0.1)


def test_set_stage_applies_at_reset():
    env = NavEnv(NavEnvConfig())
    env.reset(seed=0)
    env.set_stage(n_moving=4, n_goals=2, max_steps=300)
    assert env.config.n_moving == 0
    env.reset()
    assert (env.config.n_moving, env.config.n_goals, env.config.max_steps) == (4, 2, 300)
    assert len(env.obs_rad) == 7 and len(env.goals) == 2
    with pytest.raises(ValueError, match="unknown field"):
        env.set_stage(robot="diff_drive")


def test_layout_pool_and_unseen_layouts():
    env = NavEnv(NavEnvConfig(layout_pool=1))
    env.reset(seed=0)
    first = env.obs_pos.copy()
    env.reset(seed=99)
    assert np.allclose(first, env.obs_pos)
    env.reset(seed=0, options={"layout_id": 1000})
    assert not np.allclose(first, env.obs_pos)


def test_goal_env_compute_reward_vectorised():
    env = NavGoalEnv(NavEnvConfig(reward="sparse"))
    env.reset(seed=0)
    ag = np.array([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]])
    dg = np.array([[0.1, 0.12], [0.1, 0.1], [0.9, 0.9]])
    assert env.compute_reward(ag, dg, [{}] * 3).tolist() == [0.0, -1.0, 0.0]
    assert env.compute_terminated(ag, dg, None).tolist() == [False] * 3
    assert env.compute_truncated(ag, dg, None).shape == (3,)
    obs, _ = env.reset(seed=0)
    _, r, _, _, info = env.step(np.zeros(2, dtype=np.float32))
    assert r == env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)


def test_goal_env_success_does_not_end_episode():
    env = NavGoalEnv(NavEnvConfig(n_static=0, reward="sparse", max_steps=3))
    env.reset(seed=0)
    env.pos = env.goals[0].copy()
    _, r, term, trunc, info = env.step(np.zeros(2, dtype=np.float32))
    assert r == 0.0 and info["is_success"] and not term and not trunc


def test_render_and_gif(tmp_path):
    env = NavEnv(NavEnvConfig(n_moving=2), render_mode="rgb_array")
    env.reset(seed=0)
    frames = [env.render()]
    for _ in range(3):
        env.step(env.action_space.sample())
        frames.append(env.render())
    assert frames[0].shape == (256, 256, 3) and frames[0].dtype == np.uint8
    assert (frames[0] != frames[0][0, 0]).any()
    path = write_gif(frames, tmp_path / "ep.gif")
    assert path.stat().st_size > 100


def test_vec_env_steps():
    venv = make_vec_env(NavEnvConfig(), 3, seed=1)
    obs = venv.reset()
    assert obs.shape == (3, 24)
    obs, rew, _, infos = venv.step(np.zeros((3, 2), dtype=np.float32))
    assert rew.shape == (3,) and len(infos) == 3
    assert venv.env_method("get_stage")[0]["n_static"] == 3


def test_bad_config_raises():
    with pytest.raises(ValueError, match="robot"):
        NavEnvConfig(robot="tank")
    with pytest.raises(ValueError, match="obstacle_radius"):
        NavEnvConfig(obstacle_radius=(0.5, 0.1))


def test_gymnasium_make_ids():
    import gymnasium

    env = gymnasium.make("mlcore_nav_rl/NavGoal-v0", config=NavEnvConfig(n_static=1), max_episode_steps=10)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    check_env(env.unwrapped)
