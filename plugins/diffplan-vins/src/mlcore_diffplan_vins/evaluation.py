"""The ``grid-rollout`` evaluator: %Opt, %Succ and action accuracy over every reachable start cell of the test mazes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from mlcore.config import in_range
from mlcore.errors import DataError
from mlcore.evaluation import Evaluator
from mlcore_diffplan_vins.mazes import MazeSet
from mlcore_diffplan_vins.metrics import RolloutResult, rollout_metrics

__all__ = ["GridRolloutConfig", "GridRolloutEvaluator", "policy_of"]


@attrs.define
class GridRolloutConfig:
    """Config of :class:`GridRolloutEvaluator` (table ``evaluator``).

    Attributes:
        batch_size: mazes per forward pass.
        max_mazes: evaluate at most this many test mazes (0 = all).
    """

    batch_size: int = attrs.field(default=128, validator=in_range(1, 1_000_000))
    max_mazes: int = attrs.field(default=0, validator=in_range(0))


def policy_of(
    model: nn.Module, mazes: MazeSet, *, device: torch.device | str = "cpu", batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
    """``(greedy actions [N, M, M], value maps [N, M, M] or None, mean convergence stats)`` on ``mazes``."""
    from mlcore_diffplan_vins.data import maze_tensors

    maps, _ = maze_tensors(mazes)
    was_training = model.training
    model.eval()
    actions, values = [], []
    conv: dict[str, list[float]] = {}
    try:
        with torch.no_grad():
            for i in range(0, len(maps), batch_size):
                logits = model(maps[i : i + batch_size].to(device))
                if not torch.isfinite(logits).all():
                    raise DataError(f"model produced non-finite logits on test mazes {i}..{i + len(logits) - 1}")
                actions.append(logits.argmax(dim=1).cpu().numpy())
                last = getattr(model, "last_values", None)
                if isinstance(last, torch.Tensor):
                    values.append(last.cpu().numpy())
                stats = getattr(model, "last_convergence", None)
                for k, v in (stats or {}).items():
                    conv.setdefault(k, []).append(float(v))
    finally:
        model.train(was_training)
    value_maps = np.concatenate(values) if len(values) == len(actions) and values else None
    return np.concatenate(actions), value_maps, {k: float(np.mean(v)) for k, v in conv.items()}


class GridRolloutEvaluator(Evaluator):
    """Rolls the greedy policy out from every reachable start cell of the test mazes (see :mod:`..metrics`)."""

    metrics = ("opt", "succ", "action_accuracy", "num_starts", "eval_seconds")
    config: GridRolloutConfig

    def __init__(self, config: GridRolloutConfig | None = None) -> None:
        super().__init__(config or GridRolloutConfig())
        self.last_result: RolloutResult | None = None

    def evaluate(
        self, model: nn.Module, data: Any, *, device: torch.device | str = "cpu", out_dir: str | Path | None = None
    ) -> dict[str, float]:
        """Metrics of ``model`` on ``data``'s test mazes (a :class:`~mlcore_diffplan_vins.data.GridMazes`)."""
        mazes_of = getattr(data.prepare(), "mazes_of", None)
        if mazes_of is None:
            raise DataError(f"evaluator grid-rollout needs the grid-mazes data set, not {type(data).__name__}")
        mazes = mazes_of("test")
        if self.config.max_mazes:
            mazes = mazes.subset(slice(0, self.config.max_mazes))
        return self.finish(self.score(model, mazes, device=device), out_dir)

    def score(self, model: nn.Module, mazes: MazeSet, *, device: torch.device | str = "cpu") -> dict[str, float]:
        """The metrics of ``model`` on ``mazes`` (no file written); keeps the rollout in :attr:`last_result`."""
        start = time.perf_counter()
        actions, _, conv = policy_of(model, mazes, device=device, batch_size=self.config.batch_size)
        result = rollout_metrics(mazes, actions)
        self.last_result = result
        out = {k: float(v) for k, v in result.items()}
        out["eval_seconds"] = time.perf_counter() - start
        out.update({f"convergence_{k}": v for k, v in conv.items()})
        return out
