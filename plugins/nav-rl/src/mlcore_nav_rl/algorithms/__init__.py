"""SAC, TD3 and DQN whose ``train()`` weights the critic loss by PER importance-sampling weights.

Each class is SB3's algorithm with ``train()`` re-written (the update itself is unchanged): when
the sampled batch carries ``weights``/``indices`` (a
:class:`~mlcore_nav_rl.buffers.PrioritizedReplayBuffer`), the per-sample TD loss is multiplied
by the weights and the buffer's priorities are set from ``|TD error|``; ``beta`` is annealed with
the training progress. With any other buffer they behave exactly like SB3's classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.utils import polyak_update

__all__ = ["PerDQN", "PerSAC", "PerTD3"]


def _weights(algo: Any, data: Any) -> th.Tensor | None:
    w = getattr(data, "weights", None)
    if w is not None and hasattr(algo.replay_buffer, "set_progress"):
        algo.replay_buffer.set_progress(1.0 - algo._current_progress_remaining)
    return w


def _update(algo: Any, data: Any, td: th.Tensor) -> None:
    if getattr(data, "indices", None) is not None:
        algo.replay_buffer.update_priorities(data.indices, td.detach().abs().cpu().numpy().ravel())


def _wmse(pred: th.Tensor, target: th.Tensor, w: th.Tensor | None) -> th.Tensor:
    if w is None:
        return F.mse_loss(pred, target)
    return (w * (pred - target) ** 2).mean()


class PerSAC(SAC):
    """SAC with importance-weighted critic loss and priority updates."""

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SB3's SAC update with PER weights."""
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)
        ent_coef_losses, ent_coefs, actor_losses, critic_losses = [], [], [], []
        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            w = _weights(self, data)
            discounts = data.discounts if data.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(data.observations)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -(self.log_ent_coef * (log_prob + float(self.target_entropy)).detach()).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
                next_q = th.cat(self.critic_target(data.next_observations, next_actions), dim=1)
                next_q, _ = th.min(next_q, dim=1, keepdim=True)
                next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q
            current_q = self.critic(data.observations, data.actions)
            critic_loss = 0.5 * sum(_wmse(q, target_q, w) for q in current_q)
            assert isinstance(critic_loss, th.Tensor)  # for the type checker, as in SB3
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            _update(self, data, th.stack([q - target_q for q in current_q]).abs().mean(0))
            q_pi = th.cat(self.critic(data.observations, actions_pi), dim=1)
            min_q_pi, _ = th.min(q_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_q_pi).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))


class PerTD3(TD3):
    """TD3 with importance-weighted critic loss and priority updates."""

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's TD3 update with PER weights."""
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            w = _weights(self, data)
            discounts = data.discounts if data.discounts is not None else self.gamma
            with th.no_grad():
                noise = data.actions.clone().data.normal_(0, self.target_policy_noise)
                noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
                next_actions = (self.actor_target(data.next_observations) + noise).clamp(-1, 1)
                next_q = th.cat(self.critic_target(data.next_observations, next_actions), dim=1)
                next_q, _ = th.min(next_q, dim=1, keepdim=True)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q
            current_q = self.critic(data.observations, data.actions)
            critic_loss = sum(_wmse(q, target_q, w) for q in current_q)
            assert isinstance(critic_loss, th.Tensor)  # for the type checker, as in SB3
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            _update(self, data, th.stack([q - target_q for q in current_q]).abs().mean(0))
            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self.critic.q1_forward(data.observations, self.actor(data.observations)).mean()
                actor_losses.append(actor_loss.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))


class PerDQN(DQN):
    """DQN with importance-weighted Huber loss and priority updates."""

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's DQN update with PER weights."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            w = _weights(self, data)
            discounts = data.discounts if data.discounts is not None else self.gamma
            with th.no_grad():
                next_q, _ = self.q_net_target(data.next_observations).max(dim=1)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q.reshape(-1, 1)
            current_q = th.gather(self.q_net(data.observations), dim=1, index=data.actions.long())
            per_sample = F.smooth_l1_loss(current_q, target_q, reduction="none")
            loss = per_sample.mean() if w is None else (w * per_sample).mean()
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            _update(self, data, current_q - target_q)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
