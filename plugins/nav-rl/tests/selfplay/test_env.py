"""Multi-robot env: frozen opponents act on their own observations; checkers; determinism."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_nav_rl.envs.nav_env import NavEnvConfig
from mlcore_nav_rl.selfplay.env import MultiRobotNavEnv
from mlcore_nav_rl.selfplay.league import League


class _Fixed:
    """A 'policy' that always takes one discrete action and records what it saw."""

    def __init__(self, action: int) -> None:
        self.action = action
        self.seen: list[np.ndarray] = []

    def predict(self, obs, deterministic=True):
        self.seen.append(np.array(obs))
        return np.full(len(obs), self.action), None


CFG = NavEnvConfig(action_type="discrete", arena_size=2.5, n_static=0, max_steps=30)


def _league(policy) -> League:
    lg = League()
    lg.add(policy, 0)
    return lg


@pytest.mark.parametrize("kind", ["league", "greedy", "constant"])
def test_checkers_pass(kind):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = MultiRobotNavEnv(CFG, n_others=2, opponents=kind, league=_league(_Fixed(0)))
    check_env(env, skip_render_check=True)
    sb3_check(MultiRobotNavEnv(CFG, n_others=2, opponents=kind, league=_league(_Fixed(0))), warn=False)


def test_frozen_opponent_moves_by_its_own_action():
    pol = _Fixed(0)  # discrete action 0 = +x at full speed
    env = MultiRobotNavEnv(CFG, n_others=1, opponents="league", league=_league(pol))
    env.reset(seed=0)
    env.pos = np.array([0.5, 0.5])
    env.obs_pos[0] = [1.0, 2.0]
    env.other_goals[0] = [2.2, 2.2]
    env.step(8)  # the learner stops
    np.testing.assert_allclose(env.obs_pos[0], [1.0 + CFG.max_speed * CFG.dt, 2.0])
    np.testing.assert_allclose(env.obs_vel[0], [CFG.max_speed, 0.0])
    assert len(pol.seen) == 1


def test_opponent_sees_the_learner_and_its_own_goal_and_state_is_restored():
    env = MultiRobotNavEnv(CFG, n_others=1, opponents="league", league=_league(_Fixed(8)))
    env.reset(seed=0)
    env.pos = np.array([1.0, 1.0])
    env.obs_pos[0] = [1.5, 1.0]
    env.other_goals[0] = [2.0, 2.0]
    env._ranges = env._cast_rays()
    before = env._get_obs().copy()
    o = env.observe_other(0)
    back = CFG.n_rays // 2  # the ray pointing to -x: the learner is 0.5 m away, surfaces 0.2 m apart
    assert o[back] == pytest.approx((0.5 - CFG.robot_radius) / CFG.max_range)
    np.testing.assert_allclose(o[CFG.n_rays : CFG.n_rays + 2], np.array([0.5, 1.0]) / CFG.arena_size, rtol=1e-6)
    np.testing.assert_array_equal(env._get_obs(), before)
    np.testing.assert_allclose(env.pos, [1.0, 1.0])


def test_a_robot_driving_into_the_learner_is_a_collision():
    env = MultiRobotNavEnv(CFG, n_others=1, opponents="league", league=_league(_Fixed(0)))
    env.reset(seed=0)
    env.pos = np.array([1.3, 1.0])
    env.obs_pos[0] = [0.98, 1.0]
    _, r, term, _, info = env.step(8)
    assert info["collision"] and term and r < 0


def test_same_seed_same_episode_and_opponents_from_the_league():
    lg = League(rating_share=0.0)
    for i in range(4):
        lg.add(_Fixed(i % 9), i)

    def roll(seed):
        env = MultiRobotNavEnv(CFG, n_others=2, opponents="league", league=lg)
        obs, info = env.reset(seed=seed)
        out = [obs]
        for a in [0, 2, 4, 6, 1, 3]:
            out.append(env.step(a)[0])
        return np.array(out), info["opponents"], env.obs_pos.copy()

    a, b = roll(3), roll(3)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and all(0 <= i < 4 for i in a[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert not np.array_equal(roll(4)[2], a[2])


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="needs a league"):
        MultiRobotNavEnv(CFG, opponents="league")
    with pytest.raises(ValueError, match="opponents="):
        MultiRobotNavEnv(CFG, opponents="nobody", league=League())
