"""Curriculum progression, forcing, custom stages, exploration, persistence and the SB3 callback."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore_nav_rl.curriculum import Curriculum, CurriculumConfig, StageSpec, make_curriculum_callback


def test_default_stages_follow_the_plan():
    stages = CurriculumConfig().stages
    assert [(s.n_static + s.n_moving, s.n_moving > 0, s.n_goals, s.max_steps) for s in stages] == [
        (3, False, 1, 200),
        (5, True, 1, 200),
        (5, True, 3, 300),
        (7, True, 4, 400),
    ]


def test_progression_needs_a_full_window_and_all_thresholds():
    cur = Curriculum(CurriculumConfig(window=10))
    for _ in range(9):
        assert not cur.record_episode(12.0, True, False)
    assert cur.record_episode(12.0, True, False, timesteps=900)
    assert cur.stage_index == 1 and cur.episodes_in_stage == 0
    assert cur.history[0]["timesteps"] == 900 and cur.history[0]["success_rate"] == 1.0
    # stage 2 (collision <= 0.2): successes with 30 % collisions do not progress
    for i in range(30):
        assert not cur.record_episode(12.0, i % 10 >= 3, i % 10 < 3)
    assert cur.stage_index == 1
    # low return blocks progression even with successes (stage 3 needs mean >= 15)
    for _ in range(10):
        cur.record_episode(12.0, True, False)
    assert cur.stage_index == 2
    for _ in range(20):
        cur.record_episode(10.0, True, False)
    assert cur.stage_index == 2


def test_last_stage_does_not_advance_and_force_stage_stops_auto():
    cur = Curriculum(CurriculumConfig(window=2))
    cur.force_stage(3)
    for _ in range(5):
        assert not cur.record_episode(100.0, True, False)
    assert cur.stage_index == 3 and cur.is_last_stage and cur.history[-1]["reason"] == "forced"
    cur = Curriculum(CurriculumConfig(window=2, force_stage=1))
    for _ in range(5):
        cur.record_episode(100.0, True, False)
    assert cur.stage_index == 1


def test_custom_stages_from_config_and_errors():
    cfg = structure(
        CurriculumConfig,
        {"window": 3, "stages": [{"name": "a", "n_static": 1}, {"name": "b", "n_moving": 2, "mean_reward": 1.0}]},
    )
    assert [s.name for s in cfg.stages] == ["a", "b"] and cfg.stages[1].mean_reward == 1.0
    with pytest.raises(ConfigError, match=r"force_stage|stage index"):
        structure(CurriculumConfig, {"force_stage": 7})
    with pytest.raises(ConfigError, match="success_rate"):
        structure(CurriculumConfig, {"stages": [{"success_rate": 1.5}]})


def test_exploration_schedule_per_stage():
    cur = Curriculum(
        CurriculumConfig(
            stages=[StageSpec(exploration_start=1.0, exploration_end=0.3, exploration_decay=0.5), StageSpec()]
        )
    )
    assert cur.exploration() == 1.0
    cur.record_episode(0.0, False, True)
    assert cur.exploration() == 0.5
    cur.record_episode(0.0, False, True)
    assert cur.exploration() == 0.3


def test_progress_file_roundtrip(tmp_path):
    cur = Curriculum(CurriculumConfig(window=4))
    for _ in range(6):
        cur.record_episode(20.0, True, False)
    path = cur.save(tmp_path / "curriculum_progress.json")
    again = Curriculum.load(path, CurriculumConfig(window=4))
    assert again.state_dict() == cur.state_dict()
    assert again.stage_index == 1 and again.episodes_in_stage == 2


def test_callback_switches_env_stage_through_env_method(tmp_path):
    from stable_baselines3 import DQN

    from mlcore_nav_rl.envs import NavEnvConfig, make_vec_env

    stages = [StageSpec("easy", 0, 0, 1, 5, success_rate=0.0, collision_rate=1.0), StageSpec("hard", 0, 2, 2, 7)]
    cur = Curriculum(CurriculumConfig(stages=stages, window=2))
    venv = make_vec_env(NavEnvConfig(action_type="discrete", max_steps=5), 2, seed=0)
    model = DQN("MlpPolicy", venv, learning_starts=1000, policy_kwargs={"net_arch": [16]}, device="cpu")
    model.learn(40, callback=make_curriculum_callback(cur, tmp_path / "curriculum_progress.json"))
    assert cur.stage_index == 1
    assert (
        venv.env_method("get_stage")
        == [{**venv.env_method("get_stage")[0], "n_moving": 2, "n_goals": 2, "max_steps": 7}] * 2
    )
    assert (tmp_path / "curriculum_progress.json").exists()
    assert model.exploration_rate == pytest.approx(cur.exploration())
    assert np.isfinite(model.exploration_rate)
