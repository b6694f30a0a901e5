"""Proportional Prioritized Experience Replay (Schaul et al., 2016) for stable-baselines3.

SB3 ships no PER (open request DLR-RM/stable-baselines3#1242), so this is hand-written:

- :class:`SumTree`: a numpy sum tree whose updates and stratified sampling are vectorised over
  the batch (one numpy operation per tree level, ``O(B log N)`` work, no Python loop per item).
- :class:`PrioritizedReplayBuffer`: an SB3 ``ReplayBuffer`` subclass. The priority of a
  transition is ``p = min(|delta|, td_clip) + eps`` (Schaul et al. clip the TD error like the
  Huber loss does; ``td_clip=0`` = no clipping); new transitions get ``max_priority``, the largest
  priority of recent updates (raised by every larger one, decayed by ``max_priority_decay`` per
  update so one outlier does not pin it); ``sample`` draws ``P(i) = p_i^alpha / sum_k p_k^alpha`` and
  returns importance-sampling weights ``w_i = (N P(i))^-beta / max_j w_j`` plus the flat indices
  to pass back to :meth:`PrioritizedReplayBuffer.update_priorities` with the TD errors.
  ``beta`` is annealed linearly from ``beta`` to ``beta_final`` by :meth:`set_progress`
  (called by the algorithms in :mod:`mlcore_nav_rl.algorithms`). Every ``(step, env)`` slot is
  one leaf, so several environments are handled without mixing their episodes.
  ``n_steps > 1`` adds n-step returns (same cut at terminations/time-outs as SB3's
  ``NStepReplayBuffer``, but with the env index fixed by the prioritized draw).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer


class SumTree:
    """A binary sum tree over ``capacity`` leaves (float64), vectorised over batches of leaves.

    Example::

        tree = SumTree(4)
        tree.update(np.array([0, 1]), np.array([1.0, 3.0]))
        tree.total  # 4.0
        tree.find(np.array([0.5, 2.0]))  # leaves [0, 1]
    """

    # ``find`` jumps to this level with one prefix sum and ``update`` recomputes the levels above it
    # whole; 10 (1 024 nodes) measured fastest for 100k leaves at batch 256
    TOP_LEVEL = 10

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        size = 1
        while size < self.capacity:
            size *= 2
        self.size = size
        self.depth = size.bit_length() - 1
        self.tree = np.zeros(2 * size, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all leaf values."""
        return float(self.tree[1])

    def leaves(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Leaf values (all, or at ``idx``)."""
        values = self.tree[self.size : self.size + self.capacity]
        return values if idx is None else values[idx]

    def update(self, idx: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``idx`` to ``values`` and recompute their ancestors (duplicates: last wins)."""
        node = np.asarray(idx, dtype=np.int64).ravel() + self.size
        self.tree[node] = np.asarray(values, dtype=np.float64).ravel()
        # strided views: left[k] = tree[2k], right[k] = tree[2k + 1]; duplicates just recompute the
        # same parent sum, so no np.unique is needed
        tree = self.tree
        left, right = tree[0::2], tree[1::2]
        top = min(self.depth, self.TOP_LEVEL)
        for _ in range(self.depth - top):
            node >>= 1
            tree[node] = left[node] + right[node]
        # the levels above ``top`` are small: recomputing them whole from contiguous slices is cheaper
        # than walking the touched nodes (same values, since a parent is always left + right)
        for level in range(top - 1, -1, -1):
            lo = 1 << level
            np.add(tree[2 * lo : 4 * lo : 2], tree[2 * lo + 1 : 4 * lo : 2], out=tree[lo : 2 * lo])

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf index holding each prefix-sum value in ``mass`` (``0 <= mass < total``)."""
        mass = np.asarray(mass, dtype=np.float64)
        tree = self.tree
        # Jump straight to level ``top`` with a prefix sum + searchsorted over its 2**top nodes
        # (a few microseconds), then walk the remaining levels: each level costs a handful of numpy
        # calls, so skipping the upper ones roughly halves the time of a batch-256 draw.
        top = min(self.depth, self.TOP_LEVEL)
        first = 1 << top
        prefix = np.cumsum(tree[first : 2 * first])
        j = np.minimum(np.searchsorted(prefix, mass, side="right"), first - 1)
        # mass left inside node ``j`` (>= 0 despite rounding, so empty left children are still skipped)
        mass = np.maximum(mass - (prefix[j] - tree[first + j]), 0.0)
        node = j + first
        for _ in range(self.depth - top):
            node <<= 1
            left = tree[node]
            right = mass >= left
            mass -= left * right
            node += right
        # rounding can only push a draw past the last non-empty leaf: clamp it back
        return np.minimum(node - self.size, self.capacity - 1)

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified proportional sampling: one draw in each of ``batch_size`` equal mass segments."""
        total = self.total
        bounds = rng.random(batch_size)
        bounds += np.arange(batch_size)
        bounds *= total / batch_size
        return self.find(np.minimum(bounds, np.nextafter(total, 0), out=bounds))


class PrioritizedReplayBufferSamples(NamedTuple):
    """SB3 replay samples plus IS ``weights`` (shape ``(B, 1)``) and flat leaf ``indices``."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    weights: th.Tensor | None = None
    indices: np.ndarray | None = None


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional PER as an SB3 ``ReplayBuffer`` (use with the algorithms in :mod:`mlcore_nav_rl.algorithms`).

    Args (besides ``ReplayBuffer``'s):
        alpha: priority exponent (0 = uniform).
        beta: initial importance-sampling exponent, annealed to ``beta_final`` by :meth:`set_progress`.
        beta_final: final IS exponent (1 = full correction).
        eps: added to the (clipped) ``|TD error|`` so no transition starves: with ``td_clip=1`` and
            ``alpha=0.6`` the default 0.01 keeps every leaf within a factor ~16 of the largest.
        td_clip: ``|TD error|`` is clipped at this before it becomes a priority (1 = the Huber
            loss's linear region; 0 = no clipping).
        max_priority_decay: ``max_priority`` is multiplied by this at every update before the
            batch's largest priority is folded in (1 = never decays).
        n_steps, gamma: n-step returns when ``n_steps > 1``.
        seed: seed of the sampling generator (``None`` = fresh entropy; the agents pass the run seed).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_final: float = 1.0,
        eps: float = 0.01,
        td_clip: float = 1.0,
        max_priority_decay: float = 0.999,
        n_steps: int = 1,
        gamma: float = 0.99,
        seed: int | None = None,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("PrioritizedReplayBuffer does not support optimize_memory_usage=True")
        super().__init__(
            buffer_size, observation_space, action_space, device, n_envs, False, handle_timeout_termination
        )
        if not alpha >= 0.0:
            raise ValueError(f"alpha={alpha} must be >= 0")
        self.alpha = float(alpha)
        self.beta0 = float(beta)
        self.beta_final = float(beta_final)
        self.beta = float(beta)
        if not eps > 0.0:
            raise ValueError(f"eps={eps} must be > 0 (a zero priority is never sampled again)")
        if not td_clip >= 0.0:
            raise ValueError(f"td_clip={td_clip} must be >= 0 (0 = no clipping)")
        if not 0.0 < max_priority_decay <= 1.0:
            raise ValueError(f"max_priority_decay={max_priority_decay} must be in (0, 1]")
        self.eps = float(eps)
        self.td_clip = float(td_clip)
        self.max_priority_decay = float(max_priority_decay)
        self.n_steps = int(n_steps)
        self.gamma = float(gamma)
        self.max_priority = 1.0
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ priorities
    def set_progress(self, fraction: float) -> None:
        """Anneal ``beta`` linearly: ``fraction=0`` -> initial beta, ``1`` -> ``beta_final``."""
        f = min(max(float(fraction), 0.0), 1.0)
        self.beta = self.beta0 + f * (self.beta_final - self.beta0)

    def add(self, obs: Any, next_obs: Any, action: Any, reward: Any, done: Any, infos: list[dict[str, Any]]) -> None:
        """Store one step of every env; the new leaves get the maximum priority."""
        flat = self.pos * self.n_envs + np.arange(self.n_envs)
        super().add(obs, next_obs, action, reward, done, infos)
        self.tree.update(flat, np.full(self.n_envs, self.max_priority**self.alpha))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray | th.Tensor) -> None:
        """Set priorities ``(min(|td|, td_clip) + eps)^alpha`` for the sampled flat ``indices``.

        ``max_priority`` (what new transitions get) decays by ``max_priority_decay`` and is then
        raised to the batch's largest priority when that is larger.
        """
        if isinstance(td_errors, th.Tensor):
            td_errors = td_errors.detach().cpu().numpy()
        p = self.priority(np.asarray(td_errors, dtype=np.float64).ravel())
        self.max_priority = max(self.max_priority * self.max_priority_decay, float(p.max()))
        self.tree.update(np.asarray(indices), p**self.alpha)

    def priority(self, td_errors: np.ndarray) -> np.ndarray:
        """The priority ``min(|td|, td_clip) + eps`` (before the ``alpha`` exponent) of TD errors."""
        p = np.abs(td_errors)
        if self.td_clip > 0:
            p = np.minimum(p, self.td_clip)
        return p + self.eps

    def probabilities(self) -> np.ndarray:
        """Sampling probability of every leaf (flat ``pos * n_envs + env`` order)."""
        leaves = self.tree.leaves()
        return leaves / leaves.sum()

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, env: Any = None) -> PrioritizedReplayBufferSamples:  # type: ignore[override]
        """Draw ``batch_size`` transitions proportionally to priority, with IS weights and indices."""
        if self.tree.total <= 0:
            raise RuntimeError("PrioritizedReplayBuffer.sample: the buffer is empty")
        idx = self.tree.sample(batch_size, self.rng)
        if not self.full:  # empty leaves have zero mass; this only guards against float rounding
            np.minimum(idx, self.pos * self.n_envs - 1, out=idx)
        # w_i = (n P_i)^-beta / max_j (n P_j)^-beta  ==  (p_i / min_j p_j)^-beta  (fewer array passes)
        priorities = self.tree.leaves(idx)
        weights = (priorities / priorities.min()) ** (-self.beta)
        if self.n_envs == 1:
            batch_inds, env_inds = idx, np.zeros_like(idx)
        else:
            batch_inds, env_inds = np.divmod(idx, self.n_envs)
        data = self._gather(batch_inds, env_inds, env)
        return PrioritizedReplayBufferSamples(
            *data, weights=self.to_torch(weights.astype(np.float32).reshape(-1, 1), copy=False), indices=idx
        )

    def _gather(
        self, batch_inds: np.ndarray, env_inds: np.ndarray, env: Any
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor | None]:
        """``(obs, actions, next_obs, dones, rewards, discounts)``; ``discounts`` only for n-step."""
        to_torch = self.to_torch
        obs = cast(np.ndarray, self._normalize_obs(self.observations[batch_inds, env_inds, :], env))
        actions = self.actions[batch_inds, env_inds, :]
        if self.n_steps <= 1:
            next_obs = cast(np.ndarray, self._normalize_obs(self.next_observations[batch_inds, env_inds, :], env))
            dones = (self.dones[batch_inds, env_inds] * (1 - self.timeouts[batch_inds, env_inds])).reshape(-1, 1)
            rewards = self._normalize_reward(self.rewards[batch_inds, env_inds].reshape(-1, 1), env)
            # ``copy=False`` everywhere here: every array is a fresh result of fancy indexing or arithmetic,
            # never a view of the storage, so torch may share it (a copy costs ~1.5 us per tensor at batch 256)
            return (
                to_torch(obs, copy=False),
                to_torch(actions, copy=False),
                to_torch(next_obs, copy=False),
                to_torch(dones, copy=False),
                to_torch(rewards, copy=False),
                None,
            )
        # n-step: accumulate rewards until the first termination/time-out (inclusive); the slot
        # just before ``pos`` is treated as a cut so no window runs into overwritten data.
        timeouts = self.timeouts
        last = self.pos - 1
        saved = timeouts[last].copy()
        timeouts[last] = np.logical_or(saved, np.logical_not(self.dones[last]))
        try:
            steps = np.arange(self.n_steps)[None, :]
            rows = (batch_inds[:, None] + steps) % self.buffer_size
            cols = env_inds[:, None]
            rewards_seq = self.rewards[rows, cols]
            if env is not None:
                rewards_seq = env.normalize_reward(rewards_seq).astype(np.float32)
            cut = np.logical_or(self.dones[rows, cols], timeouts[rows, cols])
            first = np.where(cut.any(axis=1), cut.argmax(axis=1), self.n_steps - 1)
            mask = steps <= first[:, None]
            discounts = self.gamma ** mask.sum(axis=1, keepdims=True).astype(np.float32)
            rewards = (rewards_seq * (self.gamma ** steps.astype(np.float32)) * mask).sum(axis=1, keepdims=True)
            end = (batch_inds + first) % self.buffer_size
            next_obs = cast(np.ndarray, self._normalize_obs(self.next_observations[end, env_inds], env))
            dones = (self.dones[end, env_inds] * (1 - timeouts[end, env_inds])).reshape(-1, 1)
        finally:
            timeouts[last] = saved
        return (
            to_torch(obs, copy=False),
            to_torch(actions, copy=False),
            to_torch(next_obs, copy=False),
            to_torch(dones.astype(np.float32), copy=False),
            to_torch(rewards, copy=False),
            to_torch(discounts, copy=False),
        )
