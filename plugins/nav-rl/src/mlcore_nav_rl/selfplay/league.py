"""A league of frozen past snapshots of the learner, with Elo ratings and diverse opponent sampling.

Snapshots join on a schedule (:meth:`League.due`). After every learner episode the learner plays
"a game" against each robot policy it met: score 1 when the learner reached its goal, 0 when it
collided, 0.5 on a time-out; both Elo ratings move by ``k * (score - expected)``. Opponents are
drawn half from the age quantiles of the league (old and new snapshots alike: diversity) and half
in proportion to how well they do against the learner (the prioritised fictitious self-play idea:
``weight = (1 - expected learner score) ** p``). :meth:`League.best` is the top-rated member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np


def elo_expected(rating_a: float, rating_b: float) -> float:
    """Expected score of A against B (logistic, 400-point scale)."""
    return 1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / 400.0))


def elo_update(rating_a: float, rating_b: float, score_a: float, k: float = 16.0) -> tuple[float, float]:
    """New ratings of A and B after a game in which A scored ``score_a`` (1 win, 0.5 draw, 0 loss)."""
    delta = k * (score_a - elo_expected(rating_a, rating_b))
    return rating_a + delta, rating_b - delta


@attrs.define
class Member:
    """One frozen snapshot: the policy object, when it was taken, its rating and record."""

    member_id: int
    step: int
    policy: Any = attrs.field(repr=False)
    rating: float = 1000.0
    games: int = 0
    learner_score: float = 0.0  # sum of the learner's scores against this member


@attrs.define
class League:
    """Population of frozen snapshots, the learner's rating, the snapshot schedule and sampling."""

    snapshot_every: int = 2_000
    max_size: int = 20
    k: float = 16.0
    #: share of opponents drawn by rating (the rest uniformly over age quantiles)
    rating_share: float = 0.5
    pfsp_power: float = 1.0
    learner_rating: float = 1000.0
    members: list[Member] = attrs.field(factory=list)
    _next_id: int = 0
    _last_snapshot: int | None = None

    def due(self, step: int) -> bool:
        """Whether a snapshot should be taken at ``step`` (the first one at once, then every ``snapshot_every``)."""
        return self._last_snapshot is None or step - self._last_snapshot >= self.snapshot_every

    def add(self, policy: Any, step: int) -> Member:
        """Add a frozen ``policy`` (anything with ``predict(obs, deterministic=True)``, e.g. a
        :class:`FrozenQPolicy`) at the learner's current rating.

        When full, the member dropped is the lowest-rated one that is neither the newest nor the oldest.
        """
        m = Member(self._next_id, step, policy, rating=self.learner_rating)
        self._next_id += 1
        self._last_snapshot = step
        self.members.append(m)
        if len(self.members) > self.max_size:
            inner = self.members[1:-1]
            drop = min(inner, key=lambda x: x.rating)
            self.members.remove(drop)
        return m

    def get(self, member_id: int) -> Member | None:
        """The member with this id (``None`` if it has left the league)."""
        return next((m for m in self.members if m.member_id == member_id), None)

    def sample(self, rng: np.random.Generator, n: int) -> list[Member]:
        """``n`` opponents (with replacement): by age quantile and by rating, see the module docstring."""
        if not self.members:
            raise ValueError("the league is empty: add a snapshot before sampling opponents")
        out = []
        ages = len(self.members)
        for i in range(n):
            if rng.random() < self.rating_share:
                w = np.array(
                    [(1.0 - elo_expected(self.learner_rating, m.rating)) ** self.pfsp_power for m in self.members]
                )
                w = w / w.sum() if w.sum() > 0 else np.full(ages, 1.0 / ages)
                out.append(self.members[int(rng.choice(ages, p=w))])
            else:
                # stratified over age: opponent i comes from the i-th of n equal slices of the history
                lo = int(np.floor(i * ages / n))
                hi = max(lo + 1, int(np.floor((i + 1) * ages / n)))
                out.append(self.members[int(rng.integers(lo, hi))])
        return out

    def record(self, member_ids: Sequence[int], score: float) -> None:
        """Elo update of the learner against each member it met in an episode with result ``score``."""
        for mid in member_ids:
            m = self.get(mid)
            if m is None:
                continue
            self.learner_rating, m.rating = elo_update(self.learner_rating, m.rating, score, self.k)
            m.games += 1
            m.learner_score += score

    def best(self) -> Member:
        """The highest-rated member."""
        if not self.members:
            raise ValueError("the league is empty")
        return max(self.members, key=lambda m: m.rating)

    def table(self) -> list[dict[str, Any]]:
        """Members as plain rows (id, step, rating, games, learner success rate against it)."""
        return [
            {
                "id": m.member_id,
                "step": m.step,
                "rating": m.rating,
                "games": m.games,
                "learner_score_mean": m.learner_score / m.games if m.games else None,
            }
            for m in self.members
        ]


class FrozenQPolicy:
    """A numpy copy of an SB3 DQN policy's Q-network (Linear/ReLU layers): greedy actions, no torch.

    A snapshot must not change when the learner trains on, and the other robots act at every
    step, so the copy is plain arrays (a forward pass of a 64x64 MLP in numpy is far cheaper
    than ``policy.predict``).
    """

    def __init__(self, policy: Any) -> None:
        import torch

        self.layers: list[tuple[np.ndarray, np.ndarray] | None] = []
        for module in policy.q_net.q_net:
            if isinstance(module, torch.nn.Linear):
                w = module.weight.detach().cpu().numpy().astype(np.float64).T.copy()
                b = module.bias.detach().cpu().numpy().astype(np.float64).copy()
                self.layers.append((w, b))
            elif isinstance(module, torch.nn.ReLU):
                self.layers.append(None)
            else:
                raise TypeError(f"FrozenQPolicy supports Linear and ReLU layers, got {type(module).__name__}")

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values for a batch of flat observations."""
        x = np.asarray(obs, np.float64).reshape(len(obs), -1)
        for layer in self.layers:
            x = np.maximum(x, 0.0) if layer is None else x @ layer[0] + layer[1]
        return x

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Greedy actions (the SB3 ``predict`` signature; snapshots always act greedily)."""
        return self.q_values(obs).argmax(axis=1), None


def episode_score(info: dict[str, Any]) -> float:
    """The learner's game result from an episode's final ``info``: 1 success, 0 collision, 0.5 time-out."""
    if info.get("is_success"):
        return 1.0
    if info.get("collision"):
        return 0.0
    return 0.5
