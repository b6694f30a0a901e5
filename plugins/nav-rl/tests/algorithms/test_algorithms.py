"""The PER algorithm subclasses: identical to SB3 without PER, priority updates with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, SAC, TD3

from mlcore_nav_rl.algorithms import PerDQN, PerSAC, PerTD3
from mlcore_nav_rl.buffers import PrioritizedReplayBuffer
from mlcore_nav_rl.envs import NavEnvConfig, make_vec_env


def kw():
    """Small, fast settings (a fresh dict each time: SB3 mutates policy_kwargs)."""
    return {
        "learning_starts": 50,
        "batch_size": 32,
        "policy_kwargs": {"net_arch": [32, 32]},
        "seed": 3,
        "device": "cpu",
    }


def _params(model):
    return torch.cat([p.detach().ravel() for p in model.policy.parameters()])


@pytest.mark.parametrize(
    "sb3_cls,per_cls,action_type",
    [(SAC, PerSAC, "continuous"), (TD3, PerTD3, "continuous"), (DQN, PerDQN, "discrete")],
)
def test_per_algorithms_equal_sb3_with_a_uniform_buffer(sb3_cls, per_cls, action_type):
    """The rewritten ``train()`` is SB3's update exactly when the buffer carries no weights."""
    cfg = NavEnvConfig(action_type=action_type)
    a = sb3_cls("MlpPolicy", make_vec_env(cfg, 1, seed=0), **kw()).learn(200)
    b = per_cls("MlpPolicy", make_vec_env(cfg, 1, seed=0), **kw()).learn(200)
    assert a._n_updates == b._n_updates > 0
    assert torch.allclose(_params(a), _params(b))


@pytest.mark.parametrize("cls,action_type", [(PerSAC, "continuous"), (PerTD3, "continuous"), (PerDQN, "discrete")])
def test_priorities_follow_td_errors(cls, action_type):
    venv = make_vec_env(NavEnvConfig(action_type=action_type), 2, seed=0)
    model = cls("MlpPolicy", venv, replay_buffer_class=PrioritizedReplayBuffer, **kw())
    model.learn(100)
    buf = model.replay_buffer
    leaves = buf.tree.leaves()[: buf.pos * buf.n_envs]
    assert np.unique(np.round(leaves, 8)).size > 10  # updated from TD errors, not all max priority
    assert buf.beta > buf.beta0
    s = buf.sample(16)
    assert s.weights.shape == (16, 1) and float(s.weights.max()) == pytest.approx(1.0)


def test_per_sac_nstep_runs():
    venv = make_vec_env(NavEnvConfig(), 1, seed=0)
    model = PerSAC(
        "MlpPolicy",
        venv,
        replay_buffer_class=PrioritizedReplayBuffer,
        replay_buffer_kwargs={"n_steps": 3, "gamma": 0.9},
        gamma=0.9,
        **kw(),
    )
    model.learn(120)
    assert model.replay_buffer.sample(8).discounts is not None
