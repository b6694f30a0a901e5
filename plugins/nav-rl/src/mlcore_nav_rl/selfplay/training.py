"""Training against a league of frozen snapshots, and evaluation among robots the agent never met.

:class:`LeagueCallback` is the SB3 callback that feeds the league: a snapshot of the learner's
policy at the start and then every ``snapshot_every`` environment steps, and an Elo update after
every finished episode against the members the learner met. :func:`train_dqn` trains one DQN
agent against ``"league"`` (self-play) or ``"constant"`` (scripted obstacles) robots;
:func:`evaluate_policy_among` measures success/collision among any kind of robots.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from mlcore.config import in_range, one_of, positive
from mlcore_nav_rl.envs.nav_env import NavEnvConfig
from mlcore_nav_rl.selfplay.env import MultiRobotNavEnv
from mlcore_nav_rl.selfplay.league import FrozenQPolicy, League, episode_score


def _default_env() -> NavEnvConfig:
    return NavEnvConfig(action_type="discrete", reward="shaped", arena_size=2.5, n_static=0, max_steps=60)


@attrs.define
class SelfPlayConfig:
    """Multi-robot env, the league, the DQN learner and the comparison with a scripted-obstacle agent."""

    env: NavEnvConfig = attrs.field(factory=_default_env)
    n_others: int = attrs.field(default=2, validator=in_range(1, 16))
    other_speed: float = attrs.field(default=0.6, validator=positive)
    total_timesteps: int = attrs.field(default=20_000, validator=positive)
    snapshot_every: int = attrs.field(default=2_000, validator=positive)
    league_size: int = attrs.field(default=10, validator=in_range(2))
    rating_share: float = attrs.field(default=0.5, validator=in_range(0.0, 1.0))
    elo_k: float = attrs.field(default=16.0, validator=positive)
    net_arch: list[int] = attrs.field(factory=lambda: [64, 64])
    learning_rate: float = attrs.field(default=5e-4, validator=positive)
    batch_size: int = attrs.field(default=128, validator=positive)
    learning_starts: int = attrs.field(default=1_000, validator=in_range(0))
    buffer_size: int = attrs.field(default=50_000, validator=positive)
    gamma: float = attrs.field(default=0.95, validator=in_range(0.0, 1.0))
    exploration_fraction: float = attrs.field(default=0.3, validator=in_range(0.0, 1.0))
    target_update_interval: int = attrs.field(default=1_000, validator=positive)
    #: also train an agent among scripted constant-velocity robots and compare the two
    compare_scripted: bool = True
    #: robots of the comparison the agents never trained with
    eval_opponents: str = attrs.field(default="greedy", validator=one_of("greedy", "constant", "league"))
    eval_episodes: int = attrs.field(default=100, validator=positive)

    def __attrs_post_init__(self) -> None:
        if self.env.robot != "point":
            raise ValueError(f"env.robot={self.env.robot!r}: self-play supports robot='point' only")
        if self.env.action_type != "discrete":
            raise ValueError(f"env.action_type={self.env.action_type!r}: the self-play learner is DQN ('discrete')")


class LeagueCallback(BaseCallback):
    """Snapshots the learner into ``league`` on its schedule and rates it after every episode."""

    def __init__(self, league: League) -> None:
        super().__init__()
        self.league = league
        self.episodes = 0

    def _on_training_start(self) -> None:
        if self.league.due(self.num_timesteps):
            self.league.add(FrozenQPolicy(self.model.policy), self.num_timesteps)

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done:
                self.league.record(info.get("opponents", []), episode_score(info))
                self.episodes += 1
        if self.league.due(self.num_timesteps):
            self.league.add(FrozenQPolicy(self.model.policy), self.num_timesteps)
        return True


def make_env(cfg: SelfPlayConfig, opponents: str, league: League | None = None) -> MultiRobotNavEnv:
    """A multi-robot env from the config."""
    return MultiRobotNavEnv(
        cfg.env, n_others=cfg.n_others, opponents=opponents, league=league, other_speed=cfg.other_speed
    )


def train_dqn(cfg: SelfPlayConfig, opponents: str, seed: int, *, device: Any = "cpu") -> tuple[Any, League | None]:
    """Train a DQN among ``opponents`` robots (``"league"``: self-play); returns the model and the league.

    The initial weights depend on ``seed`` only, so a self-play and a scripted agent with the same
    seed start from the same network.
    """
    from stable_baselines3 import DQN
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    league = (
        League(snapshot_every=cfg.snapshot_every, max_size=cfg.league_size, k=cfg.elo_k, rating_share=cfg.rating_share)
        if opponents == "league"
        else None
    )
    venv = DummyVecEnv([lambda: Monitor(make_env(cfg, opponents, league))])
    model = DQN(
        "MlpPolicy",
        venv,
        learning_rate=cfg.learning_rate,
        batch_size=cfg.batch_size,
        learning_starts=cfg.learning_starts,
        buffer_size=cfg.buffer_size,
        gamma=cfg.gamma,
        exploration_fraction=cfg.exploration_fraction,
        target_update_interval=cfg.target_update_interval,
        policy_kwargs={"net_arch": list(cfg.net_arch)},
        seed=seed,
        device=device,
    )
    if league is not None:
        league.add(FrozenQPolicy(model.policy), 0)  # the first opponents (the env resets before any callback runs)
    callbacks: list[BaseCallback] = [LeagueCallback(league)] if league is not None else []
    # without a logger of its own, SB3's learn() makes an empty SB3-<time> directory in /tmp per call
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(cfg.total_timesteps, callback=callbacks)
    return model, league


def evaluate_policy_among(
    policy: Any, cfg: SelfPlayConfig, opponents: str, episodes: int, seed: int, league: League | None = None
) -> dict[str, Any]:
    """Success, collision and time-out rates and mean return of ``policy`` (deterministic) among ``opponents``.

    Episode ``i`` uses layout seed ``seed + i``, so two policies are evaluated on the same layouts.
    """
    env = make_env(cfg, opponents, league)
    success, collision, returns = [], [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done, info = 0.0, False, dict[str, Any]()
        while not done:
            action, _ = policy.predict(obs[None], deterministic=True)
            obs, r, term, trunc, info = env.step(np.asarray(action)[0])
            total += r
            done = term or trunc
        success.append(float(info["is_success"]))
        collision.append(float(info["collision"]))
        returns.append(total)
    return {
        "success": success,
        "success_rate": float(np.mean(success)),
        "collision_rate": float(np.mean(collision)),
        "timeout_rate": float(1.0 - np.mean(np.maximum(success, collision))),
        "return_mean": float(np.mean(returns)),
    }
