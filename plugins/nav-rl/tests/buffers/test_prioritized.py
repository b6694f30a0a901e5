"""Tests of the sum tree and the prioritized replay buffer against brute-force computations."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from scipy import stats

from mlcore_nav_rl.buffers import PrioritizedReplayBuffer, SumTree

OBS = spaces.Box(-10, 10, shape=(3,), dtype=np.float32)
ACT = spaces.Box(-1, 1, shape=(2,), dtype=np.float32)


@pytest.mark.parametrize("capacity", [37, 5_000])  # shallower and deeper than SumTree.TOP_LEVEL
def test_sum_tree_sums_and_find(capacity):
    rng = np.random.default_rng(0)
    tree = SumTree(capacity)
    assert (capacity < 2**SumTree.TOP_LEVEL) == (tree.depth < SumTree.TOP_LEVEL)
    values = rng.random(capacity)
    values[rng.random(capacity) < 0.3] = 0.0  # empty leaves must never be drawn
    tree.update(np.arange(capacity), values)
    assert tree.total == pytest.approx(values.sum())
    values[[3, 20]] = [5.0, 0.0]
    tree.update(np.array([3, 20, 3]), np.array([1.0, 0.0, 5.0]))  # duplicates: last wins
    assert tree.total == pytest.approx(values.sum())
    cum = np.cumsum(values)
    mass = rng.random(2000) * values.sum()
    assert np.array_equal(tree.find(mass), np.searchsorted(cum, mass, side="right"))
    # the extremes (where float rounding of the sums could point past a boundary) land on non-empty leaves
    found = tree.find(np.concatenate([mass, [0.0, np.nextafter(tree.total, 0)]]))
    assert np.all(values[found] > 0)


def _filled(n_envs=1, size=40, **kw):
    buf = PrioritizedReplayBuffer(size, OBS, ACT, "cpu", n_envs=n_envs, seed=0, **kw)
    for t in range(size // n_envs):
        obs = np.full((n_envs, 3), t, dtype=np.float32) + np.arange(n_envs)[:, None] * 1000
        buf.add(
            obs, obs + 1, np.zeros((n_envs, 2), np.float32), np.full(n_envs, float(t)), np.zeros(n_envs), [{}] * n_envs
        )
    return buf


def test_sampling_frequencies_match_brute_force_probabilities():
    buf = _filled(alpha=0.7)
    rng = np.random.default_rng(1)
    td = rng.random(40) * 3
    buf.update_priorities(np.arange(40), td)
    expected = (np.minimum(np.abs(td), 1.0) + buf.eps) ** 0.7
    expected /= expected.sum()
    assert np.allclose(buf.probabilities(), expected)
    counts = np.zeros(40)
    for _ in range(200):
        counts += np.bincount(buf.sample(256).indices, minlength=40)
    chi2 = stats.chisquare(counts, expected * counts.sum())
    assert chi2.pvalue > 1e-3
    # against a clearly wrong distribution (uniform) the test must reject
    assert stats.chisquare(counts, np.full(40, counts.sum() / 40)).pvalue < 1e-6


def test_priority_is_the_clipped_td_error_plus_eps():
    buf = _filled(alpha=0.5, eps=0.01)  # td_clip = 1 by default (the Huber loss's linear region)
    buf.update_priorities(np.arange(4), np.array([0.5, -3.0, 0.0, 1e-9]))
    assert buf.tree.leaves(np.arange(4)) == pytest.approx(np.sqrt([0.51, 1.01, 0.01, 0.01]))
    unclipped = _filled(alpha=0.5, eps=0.01, td_clip=0.0)
    unclipped.update_priorities(np.arange(2), np.array([0.5, -3.0]))
    assert unclipped.tree.leaves(np.arange(2)) == pytest.approx(np.sqrt([0.51, 3.01]))
    with pytest.raises(ValueError, match="eps=0"):
        _filled(eps=0.0)


def test_max_priority_rises_with_larger_priorities_and_decays_otherwise():
    buf = _filled(alpha=0.5, td_clip=0.0, eps=0.01, max_priority_decay=0.9)
    assert buf.max_priority == 1.0
    buf.update_priorities(np.arange(3), np.array([0.2, 5.0, 0.1]))
    assert buf.max_priority == pytest.approx(5.01)  # raised to the batch's largest priority
    buf.update_priorities(np.arange(3), np.array([0.2, 0.3, 0.1]))
    assert buf.max_priority == pytest.approx(5.01 * 0.9)  # decayed, not pinned by one old outlier
    buf.update_priorities(np.arange(3), np.array([0.2, 4.6, 0.1]))
    assert buf.max_priority == pytest.approx(4.61)
    # the next transitions enter at the current max priority
    buf.add(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 2)), np.zeros(1), np.zeros(1), [{}])
    assert buf.tree.leaves(np.array([0])) == pytest.approx([4.61**0.5])  # slot 0: the buffer wrapped


def test_importance_weights_formula_and_beta_annealing():
    buf = _filled(beta=0.4, td_clip=0.0)
    buf.update_priorities(np.arange(40), np.arange(1, 41, dtype=float))
    s = buf.sample(64)
    p = buf.probabilities()[s.indices]
    w = (40 * p) ** -0.4
    assert np.allclose(s.weights.numpy().ravel(), w / w.max(), rtol=1e-5)
    buf.set_progress(0.5)
    assert buf.beta == pytest.approx(0.7)
    buf.set_progress(2.0)
    assert buf.beta == 1.0


def test_samples_are_the_stored_transitions_and_new_items_get_max_priority():
    buf = _filled(n_envs=2, size=40)
    s = buf.sample(128)
    t, env = np.divmod(s.indices, 2)
    assert np.allclose(s.observations.numpy()[:, 0], t + 1000 * env)
    assert np.allclose(s.rewards.numpy().ravel(), t)
    buf.update_priorities(np.arange(40), np.full(40, 0.1))
    buf.max_priority = 7.0
    buf.add(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 2)), np.zeros(2), np.zeros(2), [{}, {}])
    leaves = buf.tree.leaves()
    assert leaves[0] == pytest.approx(7.0**0.6) and leaves[1] == pytest.approx(7.0**0.6)


def test_partial_buffer_never_samples_empty_slots():
    buf = PrioritizedReplayBuffer(100, OBS, ACT, "cpu", n_envs=1, seed=0)
    for t in range(10):
        buf.add(np.full((1, 3), t), np.full((1, 3), t), np.zeros((1, 2)), np.ones(1), np.zeros(1), [{}])
    assert buf.sample(512).indices.max() < 10


def test_nstep_returns_cut_at_termination_and_timeout():
    buf = PrioritizedReplayBuffer(20, OBS, ACT, "cpu", n_envs=1, seed=0, n_steps=3, gamma=0.5)
    # episode A: t=0..3 terminates at t=3; episode B: t=4..5 times out at t=5; then t=6..9 running
    dones = [0, 0, 0, 1, 0, 1, 0, 0, 0, 0]
    touts = [False, False, False, False, False, True, False, False, False, False]
    for t in range(10):
        o = np.full((1, 3), t, dtype=np.float32)
        buf.add(
            o, o + 1, np.zeros((1, 2)), np.array([t + 1.0]), np.array([dones[t]]), [{"TimeLimit.truncated": touts[t]}]
        )
    data = buf._gather(np.array([0, 2, 4, 5, 7, 8]), np.zeros(6, dtype=int), None)
    _, _, nxt, done, ret, disc = (x.numpy() for x in data)
    g = 0.5
    assert ret.ravel() == pytest.approx(
        [1 + 2 * g + 3 * g * g, 3 + 4 * g, 5 + 6 * g, 6, 8 + 9 * g + 10 * g * g, 9 + 10 * g]
    )
    assert disc.ravel() == pytest.approx([g**3, g**2, g**2, g, g**3, g**2])
    assert done.ravel().tolist() == [0, 1, 0, 0, 0, 0]  # the time-out bootstraps
    assert nxt[:, 0].tolist() == [3, 4, 6, 6, 10, 10]


def test_new_items_get_max_priority_at_their_own_leaves():
    """Each env's step lands on leaf ``pos * n_envs + env``: only the written leaves carry priority."""
    buf = PrioritizedReplayBuffer(20, OBS, ACT, "cpu", n_envs=2, seed=0)
    for t in range(3):
        buf.add(np.full((2, 3), t), np.full((2, 3), t), np.zeros((2, 2)), np.ones(2), np.zeros(2), [{}, {}])
    leaves = buf.tree.leaves()
    assert np.allclose(leaves[:6], 1.0) and np.all(leaves[6:] == 0.0)


@pytest.mark.parametrize("capacity", [37, 5_000])
def test_sum_tree_find_clamps_a_draw_at_the_total_to_the_last_leaf(capacity):
    """Float rounding can put a draw at (or past) the total: it must land on the last leaf, not past it."""
    tree = SumTree(capacity)
    tree.update(np.arange(capacity), np.ones(capacity))
    assert tree.find(np.array([tree.total, tree.total + 1.0])).tolist() == [capacity - 1, capacity - 1]


def test_one_step_samples_mask_time_outs_and_leave_the_discount_to_the_algorithm():
    """``n_steps=1``: a time-out is not a terminal (done 0), and ``discounts`` is None so the
    algorithm's own gamma applies (not the buffer's default 0.99)."""
    buf = PrioritizedReplayBuffer(4, OBS, ACT, "cpu", n_envs=1, seed=0)
    dones, touts = [0, 1, 1, 0], [False, False, True, False]
    for t in range(4):
        obs = np.full((1, 3), t, dtype=np.float32)
        buf.add(
            obs,
            obs + 1,
            np.zeros((1, 2)),
            np.array([t + 0.5]),
            np.array([dones[t]]),
            [{"TimeLimit.truncated": touts[t]}],
        )
    s = buf.sample(64)
    assert s.discounts is None
    assert np.array_equal(s.dones.numpy().ravel(), np.array([0, 1, 0, 0])[s.indices])
    assert np.allclose(s.rewards.numpy().ravel(), s.indices + 0.5)
    assert np.allclose(s.next_observations.numpy()[:, 0], s.indices + 1)
