"""The agent models: strategies map to SB3 buffers/algorithms; forward, BC loss, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.buffers import NStepReplayBuffer

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore_nav_rl.agent import DQNConfig, NavAgent, SACConfig, TD3Config
from mlcore_nav_rl.algorithms import PerSAC
from mlcore_nav_rl.buffers import NStepHerReplayBuffer, PrioritizedReplayBuffer
from mlcore_nav_rl.data import NavData, NavDataConfig
from mlcore_nav_rl.envs import make_vec_env

SMALL = {"net_arch": [16], "learning_starts": 10, "batch_size": 8, "buffer_size": 1000}


@pytest.mark.parametrize(
    "cfg,algo,buffer",
    [
        (SACConfig(**SMALL), "SAC", "ReplayBuffer"),
        (SACConfig(n_step=3, **SMALL), "SAC", "NStepReplayBuffer"),
        (SACConfig(her=True, **SMALL), "SAC", "HerReplayBuffer"),
        (SACConfig(her=True, n_step=3, **SMALL), "SAC", "NStepHerReplayBuffer"),
        (SACConfig(per=True, n_step=3, **SMALL), "PerSAC", "PrioritizedReplayBuffer"),
        (TD3Config(per=True, **SMALL), "PerTD3", "PrioritizedReplayBuffer"),
        (DQNConfig(**SMALL), "DQN", "ReplayBuffer"),
    ],
)
def test_strategies_select_algorithm_and_buffer(cfg, algo, buffer):
    agent = NavAgent(cfg)
    venv = make_vec_env(None, 1, goal_conditioned=agent.goal_conditioned)
    if agent.action_type == "discrete":
        from mlcore_nav_rl.envs import NavEnvConfig

        venv = make_vec_env(NavEnvConfig(action_type="discrete"), 1)
    model = agent.build_algorithm(venv, seed=0)
    assert type(model).__name__ == algo and type(model.replay_buffer).__name__ == buffer
    # the algorithm starts from the agent's weights, and adopt() copies them back
    for k, v in agent.policy.state_dict().items():
        assert torch.equal(v, model.policy.state_dict()[k])
    assert NStepHerReplayBuffer and HerReplayBuffer and NStepReplayBuffer and PrioritizedReplayBuffer and PerSAC


def test_per_settings_reach_the_buffer():
    from mlcore_nav_rl.envs import NavEnvConfig

    cfg = DQNConfig(per=True, per_alpha=0.5, per_beta=0.3, per_eps=0.1, n_step=3, **SMALL)
    buf = NavAgent(cfg).build_algorithm(make_vec_env(NavEnvConfig(action_type="discrete"), 1), seed=0).replay_buffer
    assert (buf.alpha, buf.beta0, buf.eps, buf.n_steps) == (0.5, 0.3, 0.1, 3)
    with pytest.raises(ConfigError, match="per_eps"):
        structure(DQNConfig, {"per": True, "per_eps": 0})


def test_forward_shapes_and_example_input():
    sac, dqn, her = NavAgent(SACConfig(**SMALL)), NavAgent(DQNConfig(**SMALL)), NavAgent(SACConfig(her=True, **SMALL))
    assert sac(sac.example_input(3)).shape == (3, 2)
    assert sac(sac.example_input(3)).abs().max() <= 1
    assert dqn(dqn.example_input(3)).shape == (3, 9)
    assert her(*her.example_input(1)).shape == (1, 2)


def test_behaviour_cloning_loss_falls():
    torch.manual_seed(0)
    data = NavData(NavDataConfig(demo_steps=128)).prepare()
    agent = NavAgent(SACConfig(net_arch=[64, 64]))
    obs, act = next(iter(torch.utils.data.DataLoader(data.train_set(), batch_size=64)))
    opt = torch.optim.Adam(agent.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = agent.compute_loss((obs, act), F.mse_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="per"):
        structure(SACConfig, {"her": True, "per": True})
    with pytest.raises(ConfigError, match="gamma"):
        structure(SACConfig, {"gamma": 1.5})
    with pytest.raises(ConfigError, match="net_arch"):
        structure(TD3Config, {"net_arch": []})
    with pytest.raises(ConfigError, match="her_strategy"):
        structure(DQNConfig, {"her_strategy": "random"})


def _trained_weights(cfg, seed):
    from mlcore.seeding import seed_everything

    seed_everything(seed)  # what the core does before a pipeline builds its model
    agent = NavAgent(cfg)
    from mlcore_nav_rl.envs import NavEnvConfig

    env_cfg = NavEnvConfig(action_type=agent.action_type, max_steps=15)
    venv = make_vec_env(env_cfg, 2, goal_conditioned=agent.goal_conditioned, seed=seed)
    algo = agent.build_algorithm(venv, seed=seed)
    algo.learn(120)
    return torch.cat([p.detach().ravel() for p in algo.policy.parameters()])


REPRO = {"net_arch": [16], "learning_starts": 40, "batch_size": 16, "buffer_size": 1000, "gradient_steps": 2}


@pytest.mark.parametrize(
    "cfg",
    [
        SACConfig(**REPRO),
        DQNConfig(**REPRO, per=True),
        SACConfig(**REPRO, per=True, n_step=3),
        TD3Config(**REPRO, n_step=3),
        SACConfig(**REPRO, her=True),
        SACConfig(**REPRO, her=True, n_step=3),
    ],
    ids=["plain-sac", "per-dqn", "per-nstep-sac", "nstep-td3", "her-sac", "her-nstep-sac"],
)
def test_same_seed_gives_identical_weights(cfg):
    """Every random source (env, networks, exploration, HER relabelling, PER sampling) follows the seed."""
    a, b = _trained_weights(cfg, 0), _trained_weights(cfg, 0)
    assert torch.equal(a, b)
    assert not torch.equal(a, _trained_weights(cfg, 1))  # and the seed does matter
