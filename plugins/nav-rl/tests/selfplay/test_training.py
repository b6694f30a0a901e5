"""Self-play training: snapshots on schedule, ratings move, same seed -> same weights and league."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_nav_rl.selfplay.training import SelfPlayConfig, evaluate_policy_among, train_dqn

TINY = SelfPlayConfig(
    total_timesteps=400,
    snapshot_every=150,
    learning_starts=100,
    batch_size=32,
    buffer_size=1_000,
    net_arch=[16, 16],
    eval_episodes=3,
)


def _weights(model):
    return np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()])


def test_league_snapshots_on_schedule_and_rates_episodes():
    _model, league = train_dqn(TINY, "league", seed=0)
    assert [m.step for m in league.members] == [0, 150, 300]
    assert sum(m.games for m in league.members) > 0
    assert league.learner_rating != 1000.0


def test_same_seed_same_weights_and_league():
    m1, l1 = train_dqn(TINY, "league", seed=1)
    m2, l2 = train_dqn(TINY, "league", seed=1)
    np.testing.assert_array_equal(_weights(m1), _weights(m2))
    assert l1.table() == l2.table()
    m3, _ = train_dqn(TINY, "league", seed=2)
    assert not np.array_equal(_weights(m1), _weights(m3))


def test_evaluation_is_reproducible_and_counts_outcomes():
    model, _ = train_dqn(TINY, "constant", seed=0)
    a = evaluate_policy_among(model.policy, TINY, "greedy", 4, seed=5)
    b = evaluate_policy_among(model.policy, TINY, "greedy", 4, seed=5)
    assert a == b
    assert a["success_rate"] + a["collision_rate"] + a["timeout_rate"] == pytest.approx(1.0)


def test_config_rejects_continuous_and_diff_drive():
    import attrs

    from mlcore_nav_rl.envs.nav_env import NavEnvConfig

    with pytest.raises(ValueError, match=r"env\.action_type"):
        attrs.evolve(TINY, env=NavEnvConfig(action_type="continuous"))
    with pytest.raises(ValueError, match=r"env\.robot"):
        attrs.evolve(TINY, env=NavEnvConfig(action_type="discrete", robot="diff_drive"))


def test_training_leaves_no_directory_in_the_temp_dir(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    train_dqn(TINY, "constant", seed=0)
    assert list(tmp_path.iterdir()) == []
