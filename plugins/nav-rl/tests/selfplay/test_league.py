"""League: Elo math, the snapshot schedule, eviction, opponent sampling, the frozen Q-policy."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_nav_rl.selfplay.league import League, elo_expected, elo_update, episode_score


def test_elo_expected_and_update_by_hand():
    assert elo_expected(1000, 1000) == pytest.approx(0.5)
    assert elo_expected(1400, 1000) == pytest.approx(1 / (1 + 10**-1))
    a, b = elo_update(1000, 1000, 1.0, k=16)
    assert (a, b) == pytest.approx((1008.0, 992.0))  # winner gains k/2, loser loses it
    a, b = elo_update(1400, 1000, 0.0, k=16)
    assert a == pytest.approx(1400 - 16 * (1 / (1 + 10**-1)))
    assert a + b == pytest.approx(2400)


def test_episode_score():
    assert episode_score({"is_success": True, "collision": False}) == 1.0
    assert episode_score({"is_success": False, "collision": True}) == 0.0
    assert episode_score({"is_success": False, "collision": False}) == 0.5


def test_snapshot_schedule():
    lg = League(snapshot_every=2_000)
    assert lg.due(0)
    lg.add("p0", 0)
    assert not lg.due(1_999)
    assert lg.due(2_000)
    lg.add("p1", 2_000)
    assert not lg.due(3_999) and lg.due(4_000)
    assert [m.step for m in lg.members] == [0, 2_000]


def test_new_member_starts_at_the_learner_rating_and_eviction_keeps_oldest_and_newest():
    lg = League(max_size=3)
    lg.add("a", 0)
    lg.learner_rating = 1100.0
    lg.add("b", 1)
    assert lg.members[1].rating == 1100.0
    lg.members[1].rating = 900.0  # weakest inner member
    lg.add("c", 2)
    lg.members[2].rating = 950.0
    lg.add("d", 3)
    assert [m.policy for m in lg.members] == ["a", "c", "d"]


def test_record_updates_learner_and_each_member_met():
    lg = League()
    lg.add("a", 0)
    lg.add("b", 1)
    lg.record([0, 1], 1.0)
    assert lg.members[0].rating == pytest.approx(992.0)
    # the second game is played at the learner's updated rating
    exp = elo_expected(1008.0, 1000.0)
    assert lg.members[1].rating == pytest.approx(1000 - 16 * (1 - exp))
    assert lg.learner_rating == pytest.approx(1008 + 16 * (1 - exp))
    assert [m.games for m in lg.members] == [1, 1]
    lg.record([99], 0.0)  # a member that has left the league is ignored
    assert lg.best().member_id == 1


def test_age_stratified_sampling_covers_old_and_new_snapshots():
    lg = League(rating_share=0.0, max_size=10)
    for i in range(10):
        lg.add(i, i)
    rng = np.random.default_rng(0)
    firsts, seconds = set(), set()
    for _ in range(500):
        a, b = lg.sample(rng, 2)
        firsts.add(a.policy)
        seconds.add(b.policy)
    assert firsts == set(range(5))  # opponent 1 from the older half, opponent 2 from the newer
    assert seconds == set(range(5, 10))


def test_rating_sampling_prefers_members_the_learner_struggles_against():
    lg = League(rating_share=1.0)
    lg.add("weak", 0)
    lg.add("strong", 1)
    lg.members[0].rating, lg.members[1].rating = 800.0, 1200.0
    rng = np.random.default_rng(0)
    picks = [lg.sample(rng, 1)[0].policy for _ in range(2_000)]
    w_weak, w_strong = 1 - elo_expected(1000, 800), 1 - elo_expected(1000, 1200)
    assert picks.count("strong") / len(picks) == pytest.approx(w_strong / (w_weak + w_strong), abs=0.03)


def test_empty_league_raises():
    with pytest.raises(ValueError, match="empty"):
        League().sample(np.random.default_rng(0), 1)


def test_frozen_q_policy_matches_the_torch_network_and_does_not_follow_training():
    import torch
    from stable_baselines3 import DQN

    from mlcore_nav_rl.selfplay.league import FrozenQPolicy
    from mlcore_nav_rl.selfplay.training import SelfPlayConfig, make_env

    model = DQN("MlpPolicy", make_env(SelfPlayConfig(), "greedy"), policy_kwargs={"net_arch": [16, 16]}, seed=0)
    frozen = FrozenQPolicy(model.policy)
    obs = np.random.default_rng(0).standard_normal((32, 24)).astype(np.float32)
    with torch.no_grad():
        q = model.policy.q_net(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(frozen.q_values(obs), q, atol=1e-5)
    np.testing.assert_array_equal(frozen.predict(obs)[0], q.argmax(1))
    with torch.no_grad():
        for p in model.policy.q_net.parameters():
            p.add_(1.0)
    np.testing.assert_allclose(frozen.q_values(obs), q, atol=1e-5)
