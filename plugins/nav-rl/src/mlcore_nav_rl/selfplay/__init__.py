"""Self-play: a multi-robot env whose other robots are frozen snapshots of the learner (a league)."""

from mlcore_nav_rl.selfplay.env import MultiRobotNavEnv
from mlcore_nav_rl.selfplay.league import FrozenQPolicy, League, Member, elo_expected, elo_update, episode_score

__all__ = ["FrozenQPolicy", "League", "Member", "MultiRobotNavEnv", "elo_expected", "elo_update", "episode_score"]
