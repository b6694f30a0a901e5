"""Batch helpers shared by the trainer, the evaluators and the conformance kit.

Moving nested batches between devices, reading a batch's size, and the loss contract
(``model.compute_loss(batch, loss_fn)`` or ``loss_fn(model(inputs), targets)``, returning a
scalar or ``(scalar, {name: value})``) live here once, so every caller agrees on them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from mlcore.errors import ConfigError, DataError, MlcoreError

__all__ = ["LossModule", "batch_size_of", "move_to_device", "split_inputs_targets", "split_loss"]


def move_to_device(batch: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """Move tensors inside (nested) dicts, lists, tuples and namedtuples to ``device``.

    A structured batch object with ``to_dict()`` and ``to(device)`` (a torch-geometric ``Batch``)
    moves itself.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return type(batch)({k: move_to_device(v, device, non_blocking) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    to = getattr(batch, "to", None)
    if callable(to) and not isinstance(batch, type) and hasattr(batch, "to_dict"):
        return to(device, non_blocking=non_blocking)  # structured batches (e.g. torch-geometric Batch)
    return batch


def batch_size_of(batch: Any) -> int:
    """The leading dimension of the first tensor found in ``batch`` (1 if none).

    A structured batch object with ``to_dict()`` and an integer ``batch_size`` (a torch-geometric
    ``Batch``: its number of graphs) gives that.
    """
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    own = getattr(batch, "batch_size", None)
    if isinstance(own, int) and not isinstance(own, bool) and hasattr(batch, "to_dict"):
        return own  # structured batches (e.g. torch-geometric Batch: its number of graphs)
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, list | tuple) else ()
    for v in values:
        n = batch_size_of(v)
        if n:
            return n
    return 1


def split_inputs_targets(batch: Any, who: str = "a model without compute_loss()") -> tuple[Any, Any]:
    """``(inputs, targets)`` of a collated batch; a :class:`DataError` naming ``who`` otherwise."""
    if not isinstance(batch, list | tuple) or len(batch) != 2:
        raise DataError(
            f"{who}: a batch must be (inputs, targets), got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, list | tuple) else "")
        )
    return batch[0], batch[1]


def split_loss(out: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """Split a loss result into ``(scalar tensor, extra values)``; anything else is a one-line error."""
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping | type(None)):
        loss, logs = out[0], dict(out[1] or {})
    else:
        loss, logs = out, {}
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        what = type(loss).__name__ if not isinstance(loss, torch.Tensor) else f"a tensor of shape {tuple(loss.shape)}"
        raise MlcoreError(f"the loss must be a scalar tensor, got {what} (check compute_loss or the loss function)")
    return (loss if loss.dim() == 0 else loss.reshape(())), logs


class LossModule(nn.Module):
    """``forward(batch) -> loss result``: the loss contract as one module, so DDP sees one forward."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., Any] | None) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn
        self.custom = callable(getattr(model, "compute_loss", None))

    def forward(self, batch: Any) -> Any:
        if self.custom:
            return self.model.compute_loss(batch, self.loss_fn)  # type: ignore[operator]
        inputs, targets = split_inputs_targets(batch)
        if self.loss_fn is None:
            raise ConfigError("no loss given and the model has no compute_loss(batch, loss_fn) method")
        return self.loss_fn(self.model(inputs), targets)
