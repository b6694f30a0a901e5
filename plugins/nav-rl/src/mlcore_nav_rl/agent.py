"""The ``sac``, ``td3`` and ``dqn`` model components: SB3 algorithms plus strategies, as ``nn.Module`` s.

A :class:`NavAgent` holds the SB3 *policy* network (actor/critics or Q-networks) built from its
config alone, so a checkpoint rebuilds it through the registry like any other model
(``build_model``) and ``forward`` gives the deterministic action (SAC/TD3) or the Q-values (DQN)
for export. :meth:`NavAgent.build_algorithm` creates the full SB3 algorithm around an
environment with the configured strategies:

- ``her``: SB3's ``HerReplayBuffer`` (goal strategy, ``n_sampled_goal``); with ``n_step > 1`` the
  hand-written :class:`~mlcore_nav_rl.buffers.NStepHerReplayBuffer`.
- ``per``: :class:`~mlcore_nav_rl.buffers.PrioritizedReplayBuffer` with the ``Per*`` algorithm
  subclasses (importance weights, priority updates); ``n_step`` is handled inside it.
- ``n_step`` alone: SB3's built-in ``n_steps``.
- ``curriculum``: the stage schedule the trainer drives (:mod:`mlcore_nav_rl.curriculum`).

The action type and observation kind follow from the model: DQN is discrete, HER is goal-conditioned.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mlcore_nav_rl.agent_config import _ALGOS, DQNConfig, SACConfig, TD3Config, _AgentConfig

__all__ = ["DQNConfig", "NavAgent", "SACConfig", "TD3Config"]


def _algo_classes(name: str, per: bool) -> Any:
    from stable_baselines3 import DQN, SAC, TD3

    from mlcore_nav_rl.algorithms import PerDQN, PerSAC, PerTD3

    return {"sac": (SAC, PerSAC), "td3": (TD3, PerTD3), "dqn": (DQN, PerDQN)}[name][1 if per else 0]


class NavAgent(nn.Module):
    """An SB3 policy as an mlcore model; :meth:`build_algorithm` wraps it into a trainable algorithm."""

    def __init__(self, config: _AgentConfig | None = None) -> None:
        super().__init__()
        self.config = config or SACConfig()
        self.algorithm = _ALGOS.get(type(self.config), "sac")
        self.action_type = "discrete" if self.algorithm == "dqn" else "continuous"
        self.goal_conditioned = self.config.her or self.config.goal_obs
        from mlcore_nav_rl.envs import NavEnvConfig, make_env

        env = make_env(
            NavEnvConfig(n_rays=self.config.n_rays, action_type=self.action_type),
            goal_conditioned=self.goal_conditioned,
        )
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        cls = _algo_classes(self.algorithm, False)
        policy_cls = cls.policy_aliases["MultiInputPolicy" if self.goal_conditioned else "MlpPolicy"]
        self.policy = policy_cls(
            self.observation_space, self.action_space, lambda _: self.config.learning_rate, **self.policy_kwargs()
        )

    # ------------------------------------------------------------------ SB3
    def policy_kwargs(self) -> dict[str, Any]:
        """``policy_kwargs`` shared by the standalone policy and the algorithm (so state dicts match)."""
        return {"net_arch": list(self.config.net_arch)}

    def algorithm_kwargs(self, seed: int | None = None) -> dict[str, Any]:
        """Keyword arguments of the SB3 algorithm (buffer class and strategies included).

        ``seed`` seeds the PER buffer's sampling generator (SB3 itself seeds numpy's, torch's and
        Python's global generators, which HER's relabelling and the action noise draw from).
        """
        c = self.config
        kw: dict[str, Any] = {
            "learning_rate": c.learning_rate,
            "buffer_size": c.buffer_size,
            "batch_size": c.batch_size,
            "gamma": c.gamma,
            "tau": c.tau,
            "learning_starts": c.learning_starts,
            "train_freq": c.train_freq,
            "gradient_steps": c.gradient_steps,
            "policy_kwargs": self.policy_kwargs(),
        }
        if isinstance(c, SACConfig):
            kw["ent_coef"] = c.ent_coef
        elif isinstance(c, TD3Config):
            kw["policy_delay"] = c.policy_delay
        elif isinstance(c, DQNConfig):
            kw.update(
                target_update_interval=c.target_update_interval,
                exploration_fraction=c.exploration_fraction,
                exploration_initial_eps=c.exploration_initial_eps,
                exploration_final_eps=c.exploration_final_eps,
            )
        if c.her:
            from stable_baselines3 import HerReplayBuffer

            from mlcore_nav_rl.buffers import NStepHerReplayBuffer

            rb_kw: dict[str, Any] = {"n_sampled_goal": c.n_sampled_goal, "goal_selection_strategy": c.her_strategy}
            if c.n_step > 1:
                kw["replay_buffer_class"] = NStepHerReplayBuffer
                rb_kw.update(n_steps=c.n_step, gamma=c.gamma)
            else:
                kw["replay_buffer_class"] = HerReplayBuffer
            kw["replay_buffer_kwargs"] = rb_kw
        elif c.per:
            from mlcore_nav_rl.buffers import PrioritizedReplayBuffer

            kw["replay_buffer_class"] = PrioritizedReplayBuffer
            kw["replay_buffer_kwargs"] = {
                "alpha": c.per_alpha,
                "beta": c.per_beta,
                "eps": c.per_eps,
                "td_clip": c.per_td_clip,
                "max_priority_decay": c.per_max_priority_decay,
                "n_steps": c.n_step,
                "gamma": c.gamma,
                "seed": seed,
            }
        elif c.n_step > 1:
            kw["n_steps"] = c.n_step
        return kw

    def build_algorithm(
        self, env: Any, *, seed: int = 0, device: Any = "cpu", tensorboard_log: str | None = None
    ) -> Any:
        """A fresh SB3 algorithm on ``env`` whose policy starts from this agent's weights."""
        cls = _algo_classes(self.algorithm, self.config.per)
        kw = self.algorithm_kwargs(seed)
        if isinstance(self.config, TD3Config) and self.config.action_noise > 0:
            import numpy as np
            from stable_baselines3.common.noise import NormalActionNoise

            n = env.action_space.shape[0]
            kw["action_noise"] = NormalActionNoise(np.zeros(n), np.full(n, self.config.action_noise))
        policy = "MultiInputPolicy" if self.goal_conditioned else "MlpPolicy"
        algo = cls(policy, env, seed=seed, device=device, tensorboard_log=tensorboard_log, verbose=0, **kw)
        algo.policy.load_state_dict(self.policy.state_dict())
        return algo

    def adopt(self, algo: Any) -> None:
        """Copy the algorithm's current policy weights into this module."""
        self.policy.load_state_dict(algo.policy.state_dict())

    # ------------------------------------------------------------------ torch API
    def _obs(self, obs: Any, achieved_goal: Any = None, desired_goal: Any = None) -> Any:
        if achieved_goal is not None:
            return {"observation": obs, "achieved_goal": achieved_goal, "desired_goal": desired_goal}
        return obs

    def forward(
        self, obs: Any, achieved_goal: torch.Tensor | None = None, desired_goal: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Deterministic action in ``[-1, 1]`` (SAC/TD3) or Q-values (DQN) for a batch of observations."""
        o = self._obs(obs, achieved_goal, desired_goal)
        if self.algorithm == "dqn":
            return self.policy.q_net(o)
        if self.algorithm == "sac":
            return self.policy.actor(o, deterministic=True)
        return self.policy.actor(o)

    def compute_loss(self, batch: Any, loss_fn: Any) -> torch.Tensor:
        """Behaviour cloning on ``(obs, expert_action)``: ``loss_fn(forward(obs), action)``.

        For DQN the Q-values act as logits of the expert's discrete action (use ``cross_entropy``);
        continuous expert actions are mapped to the nearest discrete action first. Continuous agents
        regress the expert action (``mse``).
        """
        obs, target = batch
        if self.algorithm == "dqn" and target.is_floating_point():
            from mlcore_nav_rl.envs.nav_env import _DISCRETE_POINT

            table = torch.as_tensor(_DISCRETE_POINT, dtype=target.dtype, device=target.device)
            target = torch.cdist(target.reshape(-1, 2), table).argmin(dim=1)
        return loss_fn(self(obs), target)

    def example_input(self, batch_size: int = 2) -> Any:
        """A random observation batch (a tuple ``(observation, achieved_goal, desired_goal)`` for HER agents)."""
        g = torch.Generator().manual_seed(0)
        if self.goal_conditioned:
            spaces = self.observation_space.spaces
            return tuple(
                torch.rand(batch_size, *spaces[k].shape, generator=g)
                for k in ("observation", "achieved_goal", "desired_goal")
            )
        return torch.rand(batch_size, *self.observation_space.shape, generator=g)

    @torch.no_grad()
    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        """SB3-style ``predict`` on numpy observations (single or batched)."""
        return self.policy.predict(obs, deterministic=deterministic)
