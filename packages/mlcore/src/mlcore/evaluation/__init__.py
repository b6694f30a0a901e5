"""The evaluator contract and helpers to run a model over a data set.

An evaluator is built as ``Evaluator(config)`` and called as
``evaluate(model, data, device=..., out_dir=...)``; it returns a flat ``dict[str, float]``
holding at least every name in its ``metrics`` class attribute, and writes ``metrics.json``
into ``out_dir`` when one is given.

Most evaluators only need to turn predictions and targets into figures: override
:meth:`Evaluator.compute` and the base class runs the model over ``data.eval_set()`` in
batches (:func:`predict`), checks the result and writes the file::

    import torch
    from mlcore.evaluation import Evaluator

    class MaxErrorEvaluator(Evaluator):
        metrics = ("max_error",)

        def compute(self, predictions, targets):
            return {"max_error": (predictions - targets).abs().max().item()}

Evaluators that need more (rollouts, closed-loop simulation) override :meth:`Evaluator.evaluate`
and call :meth:`Evaluator.finish` at the end.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.errors import MlcoreError
from mlcore.io import atomic_write_json

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

    from mlcore.data import DataModule

log = logging.getLogger(__name__)

__all__ = ["METRICS_FILE", "Evaluator", "concat_batches", "predict"]

#: File name evaluators write into ``out_dir``.
METRICS_FILE = "metrics.json"


def concat_batches(batches: Sequence[Any]) -> Any:
    """Concatenate a list of batches along dim 0, following their nesting (tensors, dicts, tuples).

    Zero-dimensional tensors are stacked. Non-tensor leaves are gathered into a list.
    """
    import torch

    if not batches:
        raise ValueError("concat_batches needs at least one batch")
    first = batches[0]
    if isinstance(first, torch.Tensor):
        if first.dim() == 0:
            return torch.stack(list(batches))
        return torch.cat(list(batches), dim=0)
    if isinstance(first, Mapping):
        return {k: concat_batches([b[k] for b in batches]) for k in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(concat_batches([b[i] for b in batches]) for i in range(len(first))))
    if isinstance(first, list | tuple):
        return type(first)(concat_batches([b[i] for b in batches]) for i in range(len(first)))
    return list(batches)


def predict(
    model: nn.Module,
    dataset: Dataset[Any],
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    collate_fn: Callable[[list[Any]], Any] | None = None,
    num_workers: int = 0,
) -> tuple[Any, Any]:
    """Run ``model(inputs)`` over ``dataset`` in batches, without gradients and in eval mode.

    Returns ``(predictions, targets)`` concatenated over the whole data set, on the CPU (nested
    structures are kept). The model's train/eval mode is restored afterwards.
    """
    import torch
    from torch.utils.data import DataLoader

    from mlcore.devices import resolve_device
    from mlcore.training.batches import move_to_device

    dev = resolve_device(device) if isinstance(device, str) else device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn, num_workers=num_workers)
    was_training = model.training
    model.eval()
    preds: list[Any] = []
    targets: list[Any] = []
    try:
        with torch.no_grad():
            for batch in loader:
                if not isinstance(batch, list | tuple) or len(batch) != 2:
                    raise MlcoreError(
                        f"dataset items must be (inputs, targets) pairs, got a batch of type {type(batch).__name__}"
                    )
                inputs, target = batch
                out = model(move_to_device(inputs, dev, non_blocking=True))
                preds.append(move_to_device(out, "cpu"))
                targets.append(target)
    finally:
        model.train(was_training)
    if not preds:
        raise MlcoreError("cannot evaluate on an empty data set")
    return concat_batches(preds), concat_batches(targets)


class Evaluator:
    """Base class of evaluators.

    Attributes:
        metrics: names that :meth:`evaluate` always returns (checked by the conformance kit).
        config: the evaluator's config (an attrs instance or ``None``).
    """

    metrics: tuple[str, ...] = ()

    def __init__(self, config: Any = None) -> None:
        self.config = config

    @property
    def batch_size(self) -> int:
        """Batch size for :func:`predict`: ``config.batch_size`` when the config has one, else 256."""
        return int(getattr(self.config, "batch_size", 0) or 256)

    def evaluate(
        self,
        model: nn.Module,
        data: DataModule,
        *,
        device: torch.device | str = "cpu",
        out_dir: str | Path | None = None,
    ) -> dict[str, float]:
        """Evaluate ``model`` on ``data.eval_set()``; write ``metrics.json`` into ``out_dir`` if given."""
        data.prepare()
        predictions, targets = predict(
            model, data.eval_set(), batch_size=self.batch_size, device=device, collate_fn=data.collate_fn
        )
        return self.finish(self.compute(predictions, targets), out_dir)

    def compute(self, predictions: Any, targets: Any) -> dict[str, float]:
        """Turn the whole evaluation split's predictions and targets into figures."""
        raise NotImplementedError(f"{type(self).__name__} must override compute() or evaluate()")

    def finish(self, metrics: Mapping[str, Any], out_dir: str | Path | None = None) -> dict[str, float]:
        """Convert values to floats, check the declared ``metrics`` are present, write ``metrics.json``."""
        result = {str(k): float(v) for k, v in metrics.items()}
        missing = [name for name in self.metrics if name not in result]
        if missing:
            raise RuntimeError(f"{type(self).__name__} did not return its declared metrics {missing}")
        bad = [k for k, v in result.items() if not math.isfinite(v)]
        if bad:
            log.warning("%s: non-finite metrics %s", type(self).__name__, ", ".join(bad))
        if out_dir is not None:
            path = atomic_write_json(Path(out_dir) / METRICS_FILE, result)
            log.info("metrics written to %s", path)
        return result
