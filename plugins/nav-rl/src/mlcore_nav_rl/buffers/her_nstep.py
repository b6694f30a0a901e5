"""N-step returns for Hindsight Experience Replay (hand-written: SB3 refuses ``n_steps`` with Dict observations).

:class:`NStepHerReplayBuffer` subclasses SB3's ``HerReplayBuffer``. For a sampled transition at
step ``k`` of a stored episode of length ``L`` it uses the window of ``m = min(n, L - k)`` steps
(it never crosses the episode end) and, for relabelled ("virtual") goals, also stops at the first
step where ``env.compute_terminated(next_achieved_goal, new_goal)`` is true:

    R = sum_{i < m} gamma^i r_{t+i},   target = R + gamma^m (1 - done_{t+m-1}) Q(s_{t+m}, .)

Real transitions use the stored rewards; virtual ones recompute every reward of the window with
``env.compute_reward(next_achieved_goal_{t+i}, new_goal)`` in one vectorised call. A time-out
(truncation) ends the window but still bootstraps (``done`` is masked by ``timeouts``).
The batch's ``discounts`` field carries ``gamma^m`` so SB3's SAC/TD3/DQN ``train()`` use it.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer


class NStepHerReplayBuffer(HerReplayBuffer):
    """``HerReplayBuffer`` with n-step returns (``n_steps=1`` reproduces one-step HER)."""

    def __init__(self, *args: Any, n_steps: int = 3, gamma: float = 0.99, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if n_steps < 1:
            raise ValueError(f"n_steps={n_steps} must be >= 1")
        self.n_steps = int(n_steps)
        self.gamma = float(gamma)

    def sample(self, batch_size: int, env: Any = None) -> DictReplayBufferSamples:  # type: ignore[override]
        """Sample real and relabelled transitions with n-step returns and per-sample ``discounts``."""
        is_valid = self.ep_length > 0
        if not np.any(is_valid):
            raise RuntimeError("Unable to sample before the end of the first episode (raise learning_starts).")
        sampled = np.random.choice(np.flatnonzero(is_valid), size=batch_size, replace=True)
        batch_indices, env_indices = np.unravel_index(sampled, is_valid.shape)
        nb_virtual = int(self.her_ratio * batch_size)
        v_b, r_b = np.split(batch_indices, [nb_virtual])
        v_e, r_e = np.split(env_indices, [nb_virtual])
        real = self._nstep_samples(r_b, r_e, None, env)
        virtual = self._nstep_samples(v_b, v_e, self._sample_goals(v_b, v_e), env)
        return DictReplayBufferSamples(
            observations={k: th.cat((real.observations[k], virtual.observations[k])) for k in real.observations},
            actions=th.cat((real.actions, virtual.actions)),
            next_observations={
                k: th.cat((real.next_observations[k], virtual.next_observations[k])) for k in real.observations
            },
            dones=th.cat((real.dones, virtual.dones)),
            rewards=th.cat((real.rewards, virtual.rewards)),
            discounts=th.cat((cast(th.Tensor, real.discounts), cast(th.Tensor, virtual.discounts))),
        )

    def nstep_window(self, batch_indices: np.ndarray, env_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Buffer rows ``(B, n)`` of each window and the mask of steps inside the episode."""
        steps = np.arange(self.n_steps)[None, :]
        k = (batch_indices - self.ep_start[batch_indices, env_indices]) % self.buffer_size
        remaining = self.ep_length[batch_indices, env_indices] - k
        rows = (batch_indices[:, None] + steps) % self.buffer_size
        return rows, steps < remaining[:, None]

    def _nstep_samples(
        self, batch_indices: np.ndarray, env_indices: np.ndarray, new_goals: np.ndarray | None, env: Any
    ) -> DictReplayBufferSamples:
        rows, mask = self.nstep_window(batch_indices, env_indices)
        cols = env_indices[:, None]
        bsz, n = rows.shape
        relabel_done = None
        if new_goals is None:
            rewards_seq = self.rewards[rows, cols]
        else:
            achieved = self.next_observations["achieved_goal"][rows, cols].reshape(bsz * n, -1)
            goals = np.repeat(new_goals, n, axis=0)
            if self.env is None:
                raise RuntimeError("NStepHerReplayBuffer needs the VecEnv that SB3 attaches (set_env) to relabel")
            venv = self.env
            infos: list[dict[str, Any]] = [{} for _ in range(bsz * n)]
            rewards_seq = np.asarray(venv.env_method("compute_reward", achieved, goals, infos, indices=[0])[0])
            rewards_seq = rewards_seq.reshape(bsz, n).astype(np.float32)
            if bsz:
                try:
                    term = venv.env_method("compute_terminated", achieved, goals, infos, indices=[0])[0]
                except AttributeError:
                    term = None
                if term is not None:
                    term = np.asarray(term, dtype=bool).reshape(bsz, n) & mask
                    # stop the window at the first relabelled termination (inclusive)
                    first = np.where(term.any(axis=1), term.argmax(axis=1), n)
                    mask &= np.arange(n)[None, :] <= first[:, None]
                    relabel_done = term.any(axis=1)
        if env is not None:
            rewards_seq = env.normalize_reward(rewards_seq).astype(np.float32)
        m = mask.sum(axis=1)
        discount_pow = (self.gamma ** np.arange(n, dtype=np.float64))[None, :]
        returns = (rewards_seq * discount_pow * mask).sum(axis=1, keepdims=True).astype(np.float32)
        last = rows[np.arange(bsz), m - 1] if bsz else rows[:, 0]
        dones = self.dones[last, env_indices] * (1 - self.timeouts[last, env_indices])
        if relabel_done is not None:
            dones = np.maximum(dones, relabel_done.astype(np.float32))
        obs = {key: o[batch_indices, env_indices] for key, o in self.observations.items()}
        next_obs = {key: o[last, env_indices] for key, o in self.next_observations.items()}
        if new_goals is not None:
            obs["desired_goal"] = new_goals
            next_obs["desired_goal"] = new_goals
        obs = self._normalize_obs(obs, env)  # type: ignore[assignment]
        next_obs = self._normalize_obs(next_obs, env)  # type: ignore[assignment]
        return DictReplayBufferSamples(
            observations={k: self.to_torch(v) for k, v in obs.items()},
            actions=self.to_torch(self.actions[batch_indices, env_indices]),
            next_observations={k: self.to_torch(v) for k, v in next_obs.items()},
            dones=self.to_torch(dones.astype(np.float32)).reshape(-1, 1),
            rewards=self.to_torch(returns),
            discounts=self.to_torch((self.gamma**m).astype(np.float32)).reshape(-1, 1),
        )
