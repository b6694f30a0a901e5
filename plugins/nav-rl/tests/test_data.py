"""The ``nav`` data module: environment factory, demonstrations, files and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcore.errors import DataError
from mlcore_nav_rl.data import NavData, NavDataConfig
from mlcore_nav_rl.envs import NavEnvConfig


def test_demos_are_planner_actions_and_split():
    data = NavData(NavDataConfig(demo_steps=100, val_fraction=0.2)).prepare()
    assert len(data.train_set()) == 80 and len(data.val_set()) == 20
    obs, act = data.train_set()[0]
    assert obs.shape == (24,) and act.shape == (2,) and torch.all(act.abs() <= 1)


def test_goal_conditioned_and_discrete_demos():
    data = NavData(
        NavDataConfig(demo_steps=32, goal_conditioned=True, env=NavEnvConfig(action_type="discrete"))
    ).prepare()
    obs, act = data.train_set()[0]
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"} and act.dtype == torch.int64


def test_vec_env_follows_config():
    data = NavData(NavDataConfig(env=NavEnvConfig(n_moving=2)))
    venv = data.make_vec_env(2, seed=0, goal_conditioned=True, action_type="discrete")
    assert venv.num_envs == 2 and venv.action_space.n == 9
    assert venv.env_method("get_stage")[0]["n_moving"] == 2


def test_generate_and_load_roundtrip(tmp_path):
    data = NavData(NavDataConfig(demo_steps=40))
    paths = data.generate(tmp_path)
    assert [p.name for p in paths] == ["nav_demos.npz", "nav_env.json"]
    loaded = NavData(NavDataConfig(path=str(paths[0]), val_fraction=0.0)).prepare()
    fresh = NavData(NavDataConfig(demo_steps=40, val_fraction=0.0)).prepare()
    assert torch.equal(loaded.train_set().obs, fresh.train_set().obs)
    assert data.state_dict()["env"]["n_static"] == 3


def test_bad_files_give_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="mlcore data generate nav"):
        NavData(NavDataConfig(path=str(tmp_path / "missing.npz"))).prepare()
    bad = tmp_path / "bad.npz"
    np.savez(bad, obs=np.full((4, 24), np.nan, np.float32), actions=np.zeros((4, 2), np.float32))
    with pytest.raises(DataError, match="NaN"):
        NavData(NavDataConfig(path=str(bad))).prepare()
    np.savez(bad, obs=np.zeros((4, 10), np.float32), actions=np.zeros((4, 2), np.float32))
    with pytest.raises(DataError, match="shape"):
        NavData(NavDataConfig(path=str(bad))).prepare()
    np.savez(bad, obs=np.zeros((4, 24), np.float32), actions=np.zeros((3, 2), np.float32))
    with pytest.raises(DataError, match="4 observations but 3 actions"):
        NavData(NavDataConfig(path=str(bad))).prepare()
