"""Configs of the ``sac``, ``td3`` and ``dqn`` models, apart from the agent so that reading them
(``mlcore show model sac``, config validation) does not import torch or stable-baselines3."""

from __future__ import annotations

import attrs

from mlcore.config import in_range, one_of, positive
from mlcore_nav_rl.curriculum import CurriculumConfig


@attrs.define
class _AgentConfig:
    learning_rate: float = attrs.field(default=1e-3, validator=positive)
    buffer_size: int = attrs.field(default=100_000, validator=positive)
    batch_size: int = attrs.field(default=256, validator=positive)
    gamma: float = attrs.field(default=0.98, validator=in_range(0.0, 1.0, high_open=True))
    tau: float = attrs.field(default=0.005, validator=in_range(0.0, 1.0))
    learning_starts: int = attrs.field(default=1000, validator=in_range(0))
    train_freq: int = attrs.field(default=1, validator=positive)
    gradient_steps: int = attrs.field(default=1, validator=in_range(-1))
    net_arch: list[int] = attrs.field(factory=lambda: [256, 256])
    #: must match the environment's ``n_rays`` (it fixes the observation size)
    n_rays: int = attrs.field(default=16, validator=in_range(1, 360))
    #: Dict (goal-conditioned) observations without HER, e.g. the "plain" baseline of a HER ablation
    goal_obs: bool = False
    her: bool = False
    her_strategy: str = attrs.field(default="future", validator=one_of("future", "final", "episode"))
    n_sampled_goal: int = attrs.field(default=4, validator=positive)
    per: bool = False
    per_alpha: float = attrs.field(default=0.6, validator=in_range(0.0))
    per_beta: float = attrs.field(default=0.4, validator=in_range(0.0, 1.0))
    #: added to the clipped |TD error|: large enough that no transition starves (see docs/plugins/nav-rl.md)
    per_eps: float = attrs.field(default=0.01, validator=positive)
    #: |TD error| is clipped at this before it becomes a priority, matched to the loss: 0 (none) for
    #: SAC/TD3's squared loss, 1 for DQN's Huber loss (whose gradient is capped at 1)
    per_td_clip: float = attrs.field(default=0.0, validator=in_range(0.0))
    #: new transitions get the recent maximum priority, decayed by this factor at every update
    per_max_priority_decay: float = attrs.field(default=0.999, validator=in_range(0.0, 1.0, low_open=True))
    n_step: int = attrs.field(default=1, validator=in_range(1, 100))
    curriculum: bool = False
    curriculum_config: CurriculumConfig = attrs.field(factory=CurriculumConfig)

    def __attrs_post_init__(self) -> None:
        if not self.net_arch or any(h <= 0 for h in self.net_arch):
            raise ValueError(f"net_arch={self.net_arch!r} must be a non-empty list of positive layer sizes")
        if self.her and self.per:
            raise ValueError("her=true and per=true cannot be combined (HerReplayBuffer is not prioritized)")


@attrs.define
class SACConfig(_AgentConfig):
    """SAC (continuous actions) with optional HER / PER / n-step / curriculum."""

    ent_coef: str = "auto"


@attrs.define
class TD3Config(_AgentConfig):
    """TD3 (continuous actions) with optional HER / PER / n-step / curriculum."""

    action_noise: float = attrs.field(default=0.1, validator=in_range(0.0))
    policy_delay: int = attrs.field(default=2, validator=positive)


@attrs.define
class DQNConfig(_AgentConfig):
    """DQN (discrete actions) with optional HER / PER / n-step / curriculum."""

    learning_rate: float = attrs.field(default=5e-4, validator=positive)
    learning_starts: int = attrs.field(default=1000, validator=in_range(0))
    train_freq: int = attrs.field(default=4, validator=positive)
    tau: float = attrs.field(default=1.0, validator=in_range(0.0, 1.0))
    target_update_interval: int = attrs.field(default=1000, validator=positive)
    exploration_fraction: float = attrs.field(default=0.3, validator=in_range(0.0, 1.0))
    exploration_initial_eps: float = attrs.field(default=1.0, validator=in_range(0.0, 1.0))
    exploration_final_eps: float = attrs.field(default=0.05, validator=in_range(0.0, 1.0))
    per_td_clip: float = attrs.field(default=1.0, validator=in_range(0.0))


_ALGOS = {SACConfig: "sac", TD3Config: "td3", DQNConfig: "dqn"}
