"""The ``graph-rollout`` evaluator: %Opt, %Succ, action accuracy (and angular error) over every reachable start node."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlcore.errors import DataError
from mlcore.evaluation import Evaluator
from mlcore.training.batches import move_to_device
from mlcore_diffplan_vins.graphs.build import GraphSet
from mlcore_diffplan_vins.graphs.config import GraphRolloutConfig
from mlcore_diffplan_vins.graphs.metrics import (
    angular_errors,
    choices_from_directions,
    choices_from_logits,
    graph_rollout,
)

__all__ = ["GraphRolloutEvaluator", "predict", "score_graphs"]


def predict(
    model: nn.Module,
    graphs: GraphSet,
    *,
    continuous: bool,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(outputs [N, D] or [N, 2], values [N] or None)`` of ``model`` on every node of ``graphs`` (eval mode)."""
    from mlcore_diffplan_vins.graphs.data import collate_graphs, graph_items

    items = graph_items(graphs, continuous)
    was_training = model.training
    model.eval()
    outs, values = [], []
    try:
        with torch.no_grad():
            for i in range(0, len(items), batch_size):
                batch, _ = collate_graphs(items[i : i + batch_size])
                out = model(move_to_device(batch, device))
                if not torch.isfinite(out).all():
                    raise DataError(f"model produced non-finite outputs on test graphs {i}..{i + batch_size - 1}")
                outs.append(out.cpu().numpy())
                last = getattr(model, "last_values", None)
                if isinstance(last, torch.Tensor):
                    values.append(last.cpu().numpy())
    finally:
        model.train(was_training)
    out_all = np.concatenate(outs)
    expect = 2 if continuous else graphs.num_slots
    if out_all.shape != (len(graphs.pos), expect):
        raise DataError(
            f"model output {list(out_all.shape)} does not fit the graphs: expected [{len(graphs.pos)}, {expect}] "
            f"({'directions' if continuous else 'one logit per neighbour slot'}; check dataset.continuous)"
        )
    return out_all, (np.concatenate(values) if values and len(values) == len(outs) else None)


def score_graphs(graphs: GraphSet, outputs: np.ndarray, continuous: bool) -> dict[str, Any]:
    """The rollout metrics of a model's ``outputs`` on ``graphs`` (adds ``angular_error_deg`` when continuous)."""
    if continuous:
        result = graph_rollout(graphs, choices_from_directions(graphs, outputs))
        err = angular_errors(graphs, outputs)
        result["angular_error_deg"] = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
    else:
        result = graph_rollout(graphs, choices_from_logits(graphs, outputs))
    return result


class GraphRolloutEvaluator(Evaluator):
    """Rolls the planner's policy out from every reachable start node of the test graphs (see :mod:`.metrics`)."""

    metrics = ("opt", "succ", "action_accuracy", "num_starts", "eval_seconds")
    config: GraphRolloutConfig

    def __init__(self, config: GraphRolloutConfig | None = None) -> None:
        super().__init__(config or GraphRolloutConfig())
        self.last_result: dict[str, Any] | None = None

    def evaluate(
        self, model: nn.Module, data: Any, *, device: torch.device | str = "cpu", out_dir: str | Path | None = None
    ) -> dict[str, float]:
        """Metrics of ``model`` on ``data``'s test graphs (a ``maze-graphs`` or ``geometric-graphs`` data module)."""
        graphs_of = getattr(data.prepare(), "graphs_of", None)
        if graphs_of is None:
            raise DataError(f"evaluator graph-rollout needs a graph data set, not {type(data).__name__}")
        graphs = graphs_of("test")
        if self.config.max_graphs:
            graphs = graphs.subset(slice(0, self.config.max_graphs))
        return self.finish(self.score(model, graphs, continuous=bool(data.config.continuous), device=device), out_dir)

    def score(
        self, model: nn.Module, graphs: GraphSet, *, continuous: bool, device: torch.device | str = "cpu"
    ) -> dict[str, float]:
        """The metrics of ``model`` on ``graphs`` (no file written); keeps the rollout in :attr:`last_result`."""
        start = time.perf_counter()
        outputs, _ = predict(model, graphs, continuous=continuous, device=device, batch_size=self.config.batch_size)
        result = score_graphs(graphs, outputs, continuous)
        self.last_result = result
        out = {k: float(v) for k, v in result.items()}
        out["eval_seconds"] = time.perf_counter() - start
        return out
