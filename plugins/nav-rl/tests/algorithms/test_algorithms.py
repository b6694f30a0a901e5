"""The PER algorithm subclasses: identical to SB3 without PER, priority updates with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.logger import configure

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


GAMMA = 0.5  # far from gamma**2 and gamma**3, so a one-step bootstrap shows in the loss


def _per_model(cls, action_type, **extra):
    """A Per* algorithm with a filled 3-step PER buffer and non-uniform priorities (no training yet)."""
    venv = make_vec_env(NavEnvConfig(action_type=action_type, max_steps=20), 1, seed=0)
    model = cls(
        "MlpPolicy",
        venv,
        replay_buffer_class=PrioritizedReplayBuffer,
        replay_buffer_kwargs={"n_steps": 3, "gamma": GAMMA, "seed": 0},
        gamma=GAMMA,
        **{**kw(), "learning_starts": 10_000, **extra},
    )
    model.learn(150)  # fills the buffer; no gradient step before learning_starts
    buf = model.replay_buffer
    buf.update_priorities(np.arange(buf.pos), np.random.default_rng(0).random(buf.pos) * 3)
    model.set_logger(configure(None, []))
    return model


def _one_step(model, batch):
    """Run ``train(1)`` on ``batch``; returns the logged loss and the |TD errors| passed to the buffer."""
    buf = model.replay_buffer
    seen = {}
    buf.sample = lambda *a, **k: batch
    buf.update_priorities = lambda idx, td: seen.update(idx=np.asarray(idx), td=np.asarray(td))
    torch.manual_seed(123)
    model.train(gradient_steps=1, batch_size=len(batch.indices))
    key = "train/loss" if isinstance(model, DQN) else "train/critic_loss"
    return model.logger.name_to_value[key], seen


def _targets(model, batch, discounts):
    """Hand-computed n-step TD targets of SB3's three updates (networks before the step)."""
    with torch.no_grad():
        if isinstance(model, SAC):
            torch.manual_seed(123)  # the same actor noise as train(): first pi(s), then pi(s')
            model.actor.action_log_prob(batch.observations)
            a2, logp2 = model.actor.action_log_prob(batch.next_observations)
            q2 = torch.min(torch.cat(model.critic_target(batch.next_observations, a2), dim=1), dim=1, keepdim=True)[0]
            q2 = q2 - model.ent_coef_tensor * logp2.reshape(-1, 1)
        elif isinstance(model, TD3):
            a2 = model.actor_target(batch.next_observations).clamp(-1, 1)  # target_policy_noise=0
            q2 = torch.min(torch.cat(model.critic_target(batch.next_observations, a2), dim=1), dim=1, keepdim=True)[0]
        else:
            q2 = model.q_net_target(batch.next_observations).max(dim=1)[0].reshape(-1, 1)
        return batch.rewards + (1 - batch.dones) * discounts * q2


def _loss(model, batch, target, weights):
    """Hand-weighted critic / Q loss of ``target`` with per-sample ``weights``."""
    with torch.no_grad():
        if isinstance(model, DQN):
            q = torch.gather(model.q_net(batch.observations), 1, batch.actions.long())
            return float((weights * torch.nn.functional.smooth_l1_loss(q, target, reduction="none")).mean()), [q]
        qs = model.critic(batch.observations, batch.actions)
        total = sum(float((weights * (q - target) ** 2).mean()) for q in qs)
        return (0.5 * total if isinstance(model, SAC) else total), list(qs)


PER_CASES = [
    (PerSAC, "continuous", {"ent_coef": 0.1}),
    (PerTD3, "continuous", {"target_policy_noise": 0.0}),
    (PerDQN, "discrete", {}),
]


@pytest.mark.parametrize("cls,action_type,extra", PER_CASES)
def test_per_loss_is_the_importance_weighted_nstep_td_loss(cls, action_type, extra):
    """The logged loss equals a hand computation with gamma**n bootstraps and the IS weights inside."""
    model = _per_model(cls, action_type, **extra)
    batch = model.replay_buffer.sample(64)
    n_of = np.round(np.log(batch.discounts.numpy().ravel()) / np.log(GAMMA)).astype(int)
    assert set(n_of) >= {3} and len(set(n_of)) > 1  # full 3-step windows and windows cut by episode ends
    w = batch.weights
    assert float(w.min()) < 0.9  # the weights differ, so dropping them shows
    target = _targets(model, batch, batch.discounts)
    expected, qs = _loss(model, batch, target, w)
    one_step, _ = _loss(model, batch, _targets(model, batch, GAMMA), w)
    unweighted, _ = _loss(model, batch, target, torch.ones_like(w))
    assert abs(one_step - expected) > 1e-3 * abs(expected) and abs(unweighted - expected) > 1e-3 * abs(expected)
    logged, seen = _one_step(model, batch)
    assert logged == pytest.approx(expected, rel=1e-5)
    # priorities come from the same n-step TD errors (the mean over the critics for SAC/TD3)
    td = torch.stack([q - target for q in qs]).abs().mean(0).numpy().ravel()
    assert np.array_equal(seen["idx"], batch.indices)
    assert np.allclose(seen["td"], td, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,action_type,extra", PER_CASES)
def test_train_puts_the_policy_in_training_mode(cls, action_type, extra):
    """Rollouts leave the policy in eval mode; ``train()`` must switch it back (dropout, batch norm)."""
    model = _per_model(cls, action_type, **extra)
    model.policy.set_training_mode(False)
    batch = model.replay_buffer.sample(16)
    _one_step(model, batch)
    assert model.policy.training


def test_weighted_mse_is_the_weighted_mean_of_squared_errors():
    from mlcore_nav_rl.algorithms import _wmse

    pred, target = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([[0.5], [3.0], [1.0]])
    w = torch.tensor([[1.0], [0.5], [2.0]])
    assert float(_wmse(pred, target, w)) == pytest.approx((0.25 + 0.5 * 1.0 + 2.0 * 9.0) / 3)
    assert float(_wmse(pred, target, None)) == pytest.approx((0.25 + 1.0 + 9.0) / 3)


def test_per_sac_logs_the_entropy_coefficient_it_used():
    model = _per_model(PerSAC, "continuous", ent_coef=0.1)
    _one_step(model, model.replay_buffer.sample(16))
    assert model.logger.name_to_value["train/ent_coef"] == pytest.approx(0.1)
