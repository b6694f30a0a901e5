"""N-step HER returns against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_nav_rl.buffers import NStepHerReplayBuffer
from mlcore_nav_rl.envs import NavEnvConfig, make_vec_env

G = 0.5


def _buffer(n_steps=3, terminate_on_success=False):
    venv = make_vec_env(NavEnvConfig(reward="sparse"), 1, goal_conditioned=True, monitor=False)
    venv.env_method("__setattr__", "terminate_on_success", terminate_on_success)
    buf = NStepHerReplayBuffer(
        50,
        venv.observation_space,
        venv.action_space,
        env=venv,
        device="cpu",
        n_steps=n_steps,
        gamma=G,
        n_sampled_goal=4,
        goal_selection_strategy="final",
    )
    # episode 1 (t=0..3) ends by collision (terminated); episode 2 (t=4..8) times out.
    # the robot walks along x: achieved goal at step t is (0.1 * (t + 1), 0.5); desired goal (0.45, 0.5)
    ends = {3: (1, False), 8: (1, True)}
    for t in range(9):
        ag = np.array([[0.1 * t, 0.5]], dtype=np.float32)
        nag = np.array([[0.1 * (t + 1), 0.5]], dtype=np.float32)
        dg = np.array([[0.45, 0.5]], dtype=np.float32)
        obs = {"observation": np.full((1, 22), t, np.float32), "achieved_goal": ag, "desired_goal": dg}
        nxt = {"observation": np.full((1, 22), t + 1, np.float32), "achieved_goal": nag, "desired_goal": dg}
        done, tout = ends.get(t, (0, False))
        buf.add(obs, nxt, np.zeros((1, 2)), np.array([float(t + 1)]), np.array([done]), [{"TimeLimit.truncated": tout}])
    return buf


def test_real_transitions_use_stored_rewards_and_cut_at_episode_end():
    buf = _buffer()
    s = buf._nstep_samples(np.array([0, 2, 3, 4, 7]), np.zeros(5, dtype=int), None, None)
    assert s.rewards.numpy().ravel() == pytest.approx(
        [1 + 2 * G + 3 * G * G, 3 + 4 * G, 4, 5 + 6 * G + 7 * G * G, 8 + 9 * G]
    )
    assert s.discounts.numpy().ravel() == pytest.approx([G**3, G**2, G, G**3, G**2])
    # collision at t=3 is terminal; the time-out at t=8 bootstraps
    assert s.dones.numpy().ravel().tolist() == [0, 1, 1, 0, 0]
    assert s.next_observations["observation"].numpy()[:, 0].tolist() == [3, 4, 4, 7, 9]


def test_virtual_transitions_recompute_every_reward_of_the_window():
    buf = _buffer()
    arena = 4.0
    goal = np.array([[0.3, 0.5]], dtype=np.float32)  # reached (within 0.3 m) when x in (0.225, 0.375)
    s = buf._nstep_samples(np.array([0, 4]), np.zeros(2, dtype=int), np.repeat(goal, 2, 0), None)

    def r(t):  # sparse reward of step t: next achieved x = 0.1 (t + 1)
        return 0.0 if abs(0.1 * (t + 1) - 0.3) * arena < 0.3 else -1.0

    assert s.rewards.numpy().ravel() == pytest.approx([r(0) + G * r(1) + G * G * r(2), r(4) + G * r(5) + G * G * r(6)])
    assert np.allclose(s.observations["desired_goal"].numpy(), goal)
    assert np.allclose(s.next_observations["desired_goal"].numpy(), goal)


def test_relabelled_termination_cuts_the_window():
    buf = _buffer(terminate_on_success=True)
    goal = np.array([[0.1, 0.5]], dtype=np.float32)  # reached at the first step (next x = 0.1)
    s = buf._nstep_samples(np.array([0]), np.zeros(1, dtype=int), goal, None)
    assert s.discounts.numpy().ravel() == pytest.approx([G])
    assert s.dones.numpy().ravel().tolist() == [1.0]


def test_sample_mixes_real_and_virtual_with_discounts():
    np.random.seed(0)
    buf = _buffer()
    s = buf.sample(40)
    assert s.rewards.shape == (40, 1) and s.discounts.shape == (40, 1)
    assert set(np.round(s.discounts.numpy().ravel(), 6)) <= {G, G**2, G**3}
    # "final" relabelling: virtual goals are the last achieved goal of the episode
    dg = s.observations["desired_goal"].numpy()[int(0.2 * 40) :]
    assert np.all(np.isclose(dg[:, 0], 0.4) | np.isclose(dg[:, 0], 0.9))


def test_one_step_equals_plain_her_targets():
    buf = _buffer(n_steps=1)
    s = buf._nstep_samples(np.arange(9), np.zeros(9, dtype=int), None, None)
    assert s.rewards.numpy().ravel() == pytest.approx(np.arange(1, 10))
    assert s.discounts.numpy().ravel() == pytest.approx(np.full(9, G))


def test_a_one_step_episode_is_sampled():
    """An episode that ends after its first step is a valid episode (``ep_length`` 1), not an empty one."""
    venv = make_vec_env(NavEnvConfig(reward="sparse"), 1, goal_conditioned=True, monitor=False)
    buf = NStepHerReplayBuffer(10, venv.observation_space, venv.action_space, env=venv, device="cpu", gamma=G)
    goal = {"achieved_goal": np.zeros((1, 2), np.float32), "desired_goal": np.ones((1, 2), np.float32)}
    obs = {"observation": np.zeros((1, 22), np.float32), **goal}
    nxt = {"observation": np.ones((1, 22), np.float32), **goal}
    buf.add(obs, nxt, np.zeros((1, 2)), np.array([-1.0]), np.array([1]), [{"TimeLimit.truncated": False}])
    s = buf.sample(8)
    assert s.next_observations["observation"].numpy()[:, 0].tolist() == [1.0] * 8
    assert s.discounts.numpy().ravel() == pytest.approx(np.full(8, G))


class _Normalize:
    """A VecNormalize stand-in: rewards x10, observations x2 (the real one is running statistics)."""

    def normalize_reward(self, reward):
        return np.asarray(reward) * 10.0

    def normalize_obs(self, obs):
        return {k: np.asarray(v) * 2.0 for k, v in obs.items()}


def test_samples_go_through_the_vecnormalize_env_every_reward_normalised_before_discounting():
    buf = _buffer()
    s = buf._nstep_samples(np.array([0, 4]), np.zeros(2, dtype=int), None, _Normalize())
    assert s.rewards.numpy().ravel() == pytest.approx([10 * (1 + 2 * G + 3 * G * G), 10 * (5 + 6 * G + 7 * G * G)])
    assert s.observations["observation"].numpy()[:, 0].tolist() == [0.0, 8.0]
    assert s.next_observations["observation"].numpy()[:, 0].tolist() == [6.0, 14.0]
