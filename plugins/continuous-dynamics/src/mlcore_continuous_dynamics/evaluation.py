"""The ``dynamics`` evaluator and the two reference predictors (persistence, the simulator's true model).

All errors are in the normalised state space (each state dimension scaled by its training std),
so a figure of 1.0 is an error as large as the state's own spread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from mlcore.data import DataModule
from mlcore.errors import ConfigError
from mlcore.evaluation import Evaluator, predict
from mlcore.evaluation.rollout import group_errors, horizon_errors, rollout_metrics
from mlcore.io import atomic_write_json
from mlcore.training.batches import move_to_device
from mlcore_continuous_dynamics.configs import DynamicsEvaluatorConfig
from mlcore_continuous_dynamics.data import VehicleEpisodes, Windows
from mlcore_continuous_dynamics.sim import STATE_GROUPS, true_model_rollout

log = logging.getLogger(__name__)

__all__ = ["CURVE_FILE", "DynamicsEvaluator", "model_rollout", "reference_rollouts", "rollout_windows"]

CURVE_FILE = "rollout_curve.json"
REFERENCES = ("persistence", "true_model")


def _episodes(data: DataModule) -> VehicleEpisodes:
    if not isinstance(data, VehicleEpisodes):
        raise ConfigError(f"the dynamics evaluator needs the vehicle-episodes dataset, got {type(data).__name__}")
    return data.prepare()


def rollout_windows(data: VehicleEpisodes, horizon: int, max_windows: int) -> Subset[Any]:
    """The test windows with ``horizon`` targets, at most ``max_windows`` of them evenly spread (0 = all)."""
    windows = data.rollout_set(horizon)
    if len(windows) == 0:
        raise ConfigError(f"no test window fits a rollout of {horizon} steps (lower evaluator.horizon)")
    count = len(windows) if max_windows <= 0 else min(max_windows, len(windows))
    index = np.unique(np.linspace(0, len(windows) - 1, count).round().astype(int)).tolist()
    return Subset(windows, index)


def model_rollout(
    model: torch.nn.Module, windows: Any, horizon: int, *, batch_size: int = 256, device: Any = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predictions, targets)`` of shape ``(N, horizon, D)``: the model rolled out on every window."""
    loader = DataLoader(windows, batch_size=batch_size, shuffle=False)
    was_training = model.training
    model.eval()
    preds, targets = [], []
    try:
        with torch.no_grad():
            for inputs, target in loader:
                out = model.rollout(move_to_device(inputs, device), horizon)  # type: ignore[operator]
                preds.append(out.cpu())
                targets.append(target)
    finally:
        model.train(was_training)
    return torch.cat(preds), torch.cat(targets)


def reference_rollouts(data: VehicleEpisodes, windows: Any) -> dict[str, torch.Tensor]:
    """The reference predictions on ``windows`` (a :class:`Windows` or a ``Subset`` of one), ``(N, H, D)``.

    ``persistence``: every future state equals the last known one (the ceiling to beat).
    ``true_model``: the simulator's own equations with the true parameters, fed the same inputs as
    a model (the weather known at each sample time, held over the interval) — the floor.
    """
    base = cast(Windows, windows.dataset if isinstance(windows, Subset) else windows)
    index = list(windows.indices) if isinstance(windows, Subset) else list(range(len(base)))
    picked = Windows.__new__(Windows)
    picked.__dict__.update(base.__dict__)
    picked.index = [base.index[i] for i in index]
    raw = data.raw_inputs(picked)
    horizon = base.horizon
    last = data.normalise_states(raw["state"])
    persistence = last.unsqueeze(1).expand(-1, horizon, -1).clone()
    true = true_model_rollout(
        raw["state"], raw["actions"], raw["weather"], raw["intervals"], substeps=data.config.substeps
    )
    return {"persistence": persistence, "true_model": data.normalise_states(true)}


class DynamicsEvaluator(Evaluator):
    """One-step MSE (and per state group), the H-step rollout error curve, weather permutation importance.

    Writes ``metrics.json`` and ``rollout_curve.json`` (the curve of the model and of both references,
    on the same windows). Metrics: ``mse``, ``mae``, ``mse/<group>``, ``rollout_mse/h1|h10|h<H>``,
    ``rollout_mse/mean``, ``rollout_mse/last``, ``rollout_mse/<group>``, ``persistence_mse``,
    ``true_model_mse`` (one step, test windows), ``perm_mse/<factor>`` and ``perm_increase/<factor>``.
    """

    metrics = ("mse", "rollout_mse/mean", "rollout_mse/last", "persistence_mse", "true_model_mse")

    def __init__(self, config: DynamicsEvaluatorConfig | None = None) -> None:
        super().__init__(config or DynamicsEvaluatorConfig())

    def evaluate(
        self, model: torch.nn.Module, data: DataModule, *, device: Any = "cpu", out_dir: str | Path | None = None
    ) -> dict[str, float]:
        cfg: DynamicsEvaluatorConfig = self.config
        episodes = _episodes(data)
        test = episodes.test_set()
        preds, targets = predict(model, test, batch_size=cfg.batch_size, device=device)
        err = preds.double() - targets.double()
        metrics: dict[str, float] = {"mse": err.pow(2).mean().item(), "mae": err.abs().mean().item()}
        metrics.update({f"mse/{k}": v for k, v in group_errors(preds, targets, STATE_GROUPS).items()})
        one_step_refs = reference_rollouts(episodes, episodes.windows("test", 1))
        for name in REFERENCES:
            metrics[f"{name}_mse"] = (one_step_refs[name][:, 0].double() - targets.double()).pow(2).mean().item()
        horizon = min(cfg.horizon, episodes.config.horizon)
        windows = rollout_windows(episodes, horizon, cfg.max_rollout_windows)
        roll, roll_targets = model_rollout(model, windows, horizon, batch_size=cfg.batch_size, device=device)
        curve = horizon_errors(roll, roll_targets)
        metrics.update(rollout_metrics(roll, roll_targets, groups=STATE_GROUPS, horizons=(1, 10, horizon)))
        metrics["rollout_mse/last"] = curve[-1].item()
        metrics["rollout_windows"] = float(len(windows))
        curves = {"model": curve.tolist()}
        for name, ref in reference_rollouts(episodes, windows).items():
            curves[name] = horizon_errors(ref, roll_targets).tolist()
        if cfg.permutation:
            metrics.update(self._permutation(model, episodes, test, metrics["mse"], device))
        if out_dir is not None:
            atomic_write_json(
                Path(out_dir) / CURVE_FILE,
                {"horizon": list(range(1, horizon + 1)), "windows": len(windows), "mse": curves},
            )
        return self.finish(metrics, out_dir)

    def _permutation(
        self, model: torch.nn.Module, data: VehicleEpisodes, test: Windows, base_mse: float, device: Any
    ) -> dict[str, float]:
        """One-step test MSE with each factor's weather columns shuffled across windows (whole windows)."""
        cfg: DynamicsEvaluatorConfig = self.config
        out: dict[str, float] = {}
        generator = torch.Generator().manual_seed(cfg.seed)
        for factor, columns in data.factor_columns().items():
            shuffled = _PermutedWeather(test, columns, torch.randperm(len(test), generator=generator))
            preds, targets = predict(model, shuffled, batch_size=cfg.batch_size, device=device)
            mse = (preds.double() - targets.double()).pow(2).mean().item()
            out[f"perm_mse/{factor}"] = mse
            out[f"perm_increase/{factor}"] = mse - base_mse
        return out


class _PermutedWeather(torch.utils.data.Dataset[Any]):
    """``windows`` with the weather columns ``columns`` of item ``i`` taken from item ``order[i]``."""

    def __init__(self, windows: Windows, columns: list[int], order: torch.Tensor) -> None:
        self.windows, self.columns, self.order = windows, columns, order.tolist()

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        inputs, target = self.windows[i]
        donor, _ = self.windows[self.order[i]]
        weather = inputs["weather"].clone()
        weather[:, self.columns] = donor["weather"][:, self.columns]
        return {**inputs, "weather": weather}, target
