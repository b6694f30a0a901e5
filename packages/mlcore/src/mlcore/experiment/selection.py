"""Model selection beyond one checkpoint: the mean-prediction ensemble of several runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlcore.errors import ConfigError


class MeanEnsemble(nn.Module):
    """Averages the outputs of its members (tensors, or tuples/dicts of tensors of one structure)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one model")
        self.members = nn.ModuleList(members)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The element-wise mean of the members' outputs."""
        return _mean([m(*args, **kwargs) for m in self.members])

    def example_input(self, batch_size: int = 2) -> Any:
        """The first member's example input (for export)."""
        return self.members[0].example_input(batch_size)  # type: ignore[operator]


def _mean(outputs: list[Any]) -> Any:
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(outputs).mean(dim=0)
    if isinstance(first, tuple | list):
        return type(first)(_mean([o[i] for o in outputs]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _mean([o[k] for o in outputs]) for k in first}
    raise ConfigError(f"cannot average model outputs of type {type(first).__name__}")


def evaluate_ensemble(
    checkpoints: Sequence[str | Path],
    *,
    out_dir: str | Path,
    device: str = "auto",
    data_overrides: Sequence[str] = (),
) -> dict[str, float]:
    """Evaluate the mean prediction of the models in ``checkpoints`` with the first one's evaluator and data.

    All checkpoints must have been trained on the same dataset config (a ConfigError names the
    first that differs); results go to ``<out_dir>/metrics.json`` like :func:`mlcore.api.evaluate`.
    """
    from mlcore import api
    from mlcore.devices import resolve_device
    from mlcore.io import atomic_write_json
    from mlcore.training.checkpoint import build_model

    paths = [Path(p) for p in checkpoints]
    if not paths:
        raise ConfigError("an ensemble needs at least one checkpoint")
    ckpts = [api.load_checkpoint(p) for p in paths]
    for path, ckpt in zip(paths, ckpts):
        api.validate_checkpoint_meta(ckpt, path)
    components = [(c.get("meta") or {}).get("components") or {} for c in ckpts]
    for path, comp in zip(paths[1:], components[1:]):
        if comp.get("dataset") != components[0].get("dataset"):
            raise ConfigError(f"{path}: trained on other data than {paths[0]}, so they cannot form an ensemble")
    evaluator = components[0].get("evaluator")
    if not isinstance(evaluator, dict) or "name" not in evaluator:
        raise ConfigError(f"{paths[0]}: checkpoint names no evaluator, so the ensemble cannot be evaluated")
    ev = api.build("evaluator", evaluator["name"], dict(evaluator.get("config") or {}))
    if not hasattr(ev, "evaluate"):
        raise ConfigError(f"evaluator {evaluator['name']!r} evaluates checkpoints only, not an ensemble of models")
    torch_device = resolve_device(device)
    model = MeanEnsemble([build_model(c, device=torch_device) for c in ckpts]).eval()
    data = api.rebuild_data(ckpts[0], paths[0], data_overrides)
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    metrics = dict(ev.evaluate(model, data, device=torch_device, out_dir=target))
    metrics["ensemble_size"] = len(paths)
    atomic_write_json(target / "metrics.json", metrics)
    return metrics
