"""Plain checks of the components around a model: losses, evaluators, trainers, pipelines, trackers, callbacks.

Like :mod:`mlcore.testing.checks` (which holds the data and model checks): no pytest needed; each
``check_*`` returns quietly (or a measured value) or raises :class:`~mlcore.testing.checks.ContractError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.errors import MlcoreError
from mlcore.testing._tree import tensors
from mlcore.testing.checks import ContractError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlcore.components import ComponentSpec
    from mlcore.data import DataModule

__all__ = [
    "check_callback",
    "check_evaluator",
    "check_loss",
    "check_pipeline_profile",
    "check_tracker",
    "check_trainer",
]


def check_loss(loss_fn: Callable[..., Any], prediction: torch.Tensor | Any, target: Any) -> float:
    """``loss_fn(prediction, target)`` is a finite scalar with a finite gradient w.r.t. the prediction.

    The prediction may be a model's output (a non-leaf tensor): the gradient is taken with
    :func:`torch.autograd.grad` with respect to it, not read from ``.grad``.
    """
    __tracebackhide__ = True
    import torch

    name = type(loss_fn).__name__
    floats = [t for t in tensors(prediction) if t.is_floating_point()]
    for t in floats:
        if t.is_leaf and not t.requires_grad:
            t.requires_grad_(True)
    value = loss_fn(prediction, target)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ContractError(f"{name} must return a scalar tensor, got {getattr(value, 'shape', type(value).__name__)}")
    if not bool(torch.isfinite(value.detach()).all()):
        raise ContractError(f"{name} returned a non-finite value")
    if not value.requires_grad:
        raise ContractError(f"{name}: the value carries no gradient")
    wrt = [t for t in floats if t.requires_grad]
    grads = [g for g in torch.autograd.grad(value.sum(), wrt, allow_unused=True) if g is not None] if wrt else []
    if not grads or not all(bool(g.isfinite().all()) for g in grads):
        raise ContractError(f"{name}: no finite gradient reaches the prediction")
    return float(value.detach())


def check_evaluator(evaluator: Any, model: nn.Module, data: DataModule, out_dir: str | Path) -> dict[str, float]:
    """``evaluate()`` returns a flat dict with every declared metric, finite, and writes ``metrics.json``."""
    __tracebackhide__ = True
    name = type(evaluator).__name__
    declared = tuple(getattr(evaluator, "metrics", ()) or ())
    if not declared:
        raise ContractError(f"{name} declares no metrics (set the class attribute `metrics = (...)`)")
    result = evaluator.evaluate(model, data, device="cpu", out_dir=Path(out_dir))
    if not isinstance(result, Mapping):
        raise ContractError(f"{name}.evaluate must return a dict, got {type(result).__name__}")
    missing = [m for m in declared if m not in result]
    if missing:
        raise ContractError(f"{name}.evaluate did not return declared metrics {missing}")
    for key, value in result.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ContractError(f"{name}: metric {key!r} is not a number ({value!r})") from None
        if key in declared and not math.isfinite(number):
            raise ContractError(f"{name}: metric {key!r} is not finite ({number})")
    if not (Path(out_dir) / "metrics.json").is_file():
        raise ContractError(f"{name}.evaluate(out_dir=...) must write metrics.json there (see Evaluator.finish)")
    return dict(result)


def check_trainer(
    trainer: Any,
    model: nn.Module,
    data: DataModule,
    loss_fn: Callable[..., Any] | None,
    run_dir: Path,
    meta: dict[str, Any],
) -> Any:
    """``fit()`` runs and leaves ``checkpoints/best.pt`` and ``checkpoints/last.pt`` in ``run_dir``."""
    __tracebackhide__ = True
    name = type(trainer).__name__
    result = trainer.fit(model, data, loss_fn, run_dir=run_dir, meta=meta)
    for ckpt in ("best.pt", "last.pt"):
        if not (run_dir / "checkpoints" / ckpt).is_file():
            raise ContractError(f"{name}.fit did not write checkpoints/{ckpt}")
    return result


def check_pipeline_profile(spec: ComponentSpec, profile: str) -> Any:
    """The pipeline ships ``profile`` and it structures over the default config; returns the config."""
    __tracebackhide__ = True
    from mlcore.config import layer_configs, structure

    if profile not in spec.profiles:
        have = ", ".join(spec.profiles) or "none"
        raise ContractError(f"pipeline {spec.name!r} has no {profile!r} profile (it has: {have})")
    cls = spec.config_class()
    if cls is None:
        if spec.profiles[profile]:
            raise ContractError(f"pipeline {spec.name!r} takes no config but its {profile!r} profile sets values")
        return None
    try:
        return structure(cls, layer_configs(cls, spec.profiles[profile], {}))
    except MlcoreError as exc:
        raise ContractError(f"pipeline {spec.name!r}, profile {profile!r}: {exc}") from None


def check_tracker(tracker: Any) -> None:
    """A tracker derives from :class:`mlcore.training.tracking.Tracker`."""
    __tracebackhide__ = True
    from mlcore.training.tracking import Tracker

    if not isinstance(tracker, Tracker):
        raise ContractError(f"{type(tracker).__name__} must derive from mlcore.training.tracking.Tracker")


def check_callback(callback: Any) -> None:
    """A callback derives from :class:`mlcore.training.Callback`."""
    __tracebackhide__ = True
    from mlcore.training.callbacks import Callback

    if not isinstance(callback, Callback):
        raise ContractError(f"{type(callback).__name__} must derive from mlcore.training.callbacks.Callback")
