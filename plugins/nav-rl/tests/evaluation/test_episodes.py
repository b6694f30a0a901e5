"""Episode metrics, robustness wrappers and baselines."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_nav_rl.envs import NavEnv, NavEnvConfig, NavGoalEnv
from mlcore_nav_rl.evaluation.baselines import PotentialFieldPolicy, RandomPolicy
from mlcore_nav_rl.evaluation.episodes import run_episodes, summarize
from mlcore_nav_rl.evaluation.robustness import ActionDelay, ObservationNoise, SensorDropout, wrap


def test_summarize_hand_computation():
    recs = [
        {
            "return": 10.0,
            "length": 20,
            "success": 1.0,
            "collision": 0.0,
            "goals_reached": 1,
            "path_length": 4.0,
            "optimal_length": 2.0,
        },
        {
            "return": -6.0,
            "length": 10,
            "success": 0.0,
            "collision": 1.0,
            "goals_reached": 0,
            "path_length": 1.0,
            "optimal_length": 3.0,
        },
    ]
    s = summarize(recs)
    assert s["success_rate"] == 0.5 and s["collision_rate"] == 0.5
    assert s["return_mean"] == 2.0 and s["return_std"] == 8.0
    assert s["path_efficiency"] == 0.5 and s["spl"] == 0.25 and s["episode_length"] == 15


def test_planner_beats_random_and_episodes_are_seeded():
    cfg = NavEnvConfig(n_static=3, max_steps=100)
    env = NavEnv(cfg)
    planner = summarize(run_episodes(PotentialFieldPolicy(env), env, 20, seed=0))
    random = summarize(run_episodes(RandomPolicy(env.action_space, 0), env, 20, seed=0))
    assert planner["success_rate"] >= 0.7 > random["success_rate"]
    again = summarize(run_episodes(PotentialFieldPolicy(env), NavEnv(cfg), 20, seed=0))
    assert again == planner


@pytest.mark.parametrize("robot,action_type", [("diff_drive", "continuous"), ("point", "discrete")])
def test_planner_works_for_other_robots_and_goal_env(robot, action_type):
    env = NavGoalEnv(NavEnvConfig(robot=robot, action_type=action_type, n_static=0, max_steps=120))
    res = summarize(run_episodes(PotentialFieldPolicy(env), env, 10, seed=0))
    assert res["success_rate"] >= 0.7


def test_robustness_wrappers_perturb_as_specified():
    env = NavEnv(NavEnvConfig(n_static=0))
    clean, _ = env.reset(seed=0)
    noisy, _ = ObservationNoise(NavEnv(NavEnvConfig(n_static=0)), 0.1).reset(seed=0)
    assert 0.03 < np.std(noisy - clean) < 0.2
    dropped, _ = SensorDropout(NavEnv(NavEnvConfig(n_static=0, n_rays=200)), 0.5).reset(seed=0)
    full, _ = NavEnv(NavEnvConfig(n_static=0, n_rays=200)).reset(seed=0)
    short = full[:200] < 1.0
    assert np.all(dropped[:200][~short] == 1.0)
    assert 0.3 < np.mean(dropped[:200][short] == 1.0) < 0.7
    delayed = ActionDelay(NavEnv(NavEnvConfig(n_static=0)), 2)
    delayed.reset(seed=0)
    p0 = delayed.unwrapped.pos.copy()
    delayed.step(np.array([1.0, 0.0], dtype=np.float32))
    delayed.step(np.array([1.0, 0.0], dtype=np.float32))
    assert np.allclose(delayed.unwrapped.pos, p0)
    delayed.step(np.array([0.0, 0.0], dtype=np.float32))
    assert delayed.unwrapped.pos[0] == pytest.approx(p0[0] + 0.1)
    with pytest.raises(ValueError, match="unknown perturbation"):
        wrap(env, "earthquake", 1.0)


def test_unseen_layouts_are_fixed_per_id(tmp_path):
    env = NavEnv(NavEnvConfig(), render_mode="rgb_array")
    planner = PotentialFieldPolicy(env)
    a = run_episodes(
        planner, env, 3, seed=0, layout_ids=[1_000_000, 1_000_001, 1_000_002], record=1, gif_path=tmp_path / "e.gif"
    )
    b = run_episodes(planner, env, 3, seed=50, layout_ids=[1_000_000, 1_000_001, 1_000_002])
    assert [r["optimal_length"] for r in a] == [r["optimal_length"] for r in b]
    assert (tmp_path / "e.gif").exists()
