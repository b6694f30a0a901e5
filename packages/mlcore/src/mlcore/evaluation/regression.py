"""Generic regression evaluator: MSE, MAE, RMSE and R² on the evaluation split."""

from __future__ import annotations

from typing import Any

import attrs

from mlcore.config import positive
from mlcore.errors import MlcoreError
from mlcore.evaluation import Evaluator

__all__ = ["RegressionEvaluator", "RegressionEvaluatorConfig", "regression_metrics"]


@attrs.define
class RegressionEvaluatorConfig:
    """Config of :class:`RegressionEvaluator`.

    Attributes:
        batch_size: evaluation batch size.
        per_dim: also report ``mse/<i>``, ``mae/<i>`` and ``r2/<i>`` for every output dimension.
    """

    batch_size: int = attrs.field(default=256, validator=positive)
    per_dim: bool = False


def _as_matrix(tensor: Any, what: str) -> Any:
    import torch

    if isinstance(tensor, list | tuple) and tensor and isinstance(tensor[0], torch.Tensor):
        tensor = tensor[0]  # models returning (prediction, extras...) are scored on the prediction
    if not isinstance(tensor, torch.Tensor):
        raise MlcoreError(f"regression evaluator needs tensor {what}, got {type(tensor).__name__}")
    t = tensor.detach().to(torch.float64)
    return t.reshape(t.shape[0], -1) if t.dim() > 0 else t.reshape(1, 1)


def regression_metrics(predictions: Any, targets: Any, *, per_dim: bool = False) -> dict[str, float]:
    """MSE, MAE, RMSE and R² between predictions and targets (shape ``(N, ...)``, flattened per sample).

    R² is computed per output dimension and averaged uniformly (as scikit-learn's default); a
    dimension whose target is constant scores 1.0 when predicted exactly, else 0.0.
    """
    import torch

    pred = _as_matrix(predictions, "predictions")
    true = _as_matrix(targets, "targets")
    if pred.shape != true.shape:
        raise MlcoreError(
            f"regression evaluator: predictions have shape {tuple(pred.shape)} per batch, targets {tuple(true.shape)}"
        )
    err = pred - true
    mse_d = err.pow(2).mean(dim=0)
    mae_d = err.abs().mean(dim=0)
    ss_res = err.pow(2).sum(dim=0)
    ss_tot = (true - true.mean(dim=0)).pow(2).sum(dim=0)
    constant = ss_tot == 0
    r2_d = torch.where(
        constant,
        (ss_res == 0).to(torch.float64),
        1.0 - ss_res / torch.where(constant, torch.ones_like(ss_tot), ss_tot),
    )
    mse = err.pow(2).mean().item()
    out = {
        "mse": mse,
        "mae": err.abs().mean().item(),
        "rmse": mse**0.5,
        "r2": r2_d.mean().item(),
        "num_samples": float(pred.shape[0]),
    }
    if per_dim and pred.shape[1] > 1:
        for i in range(pred.shape[1]):
            out[f"mse/{i}"] = mse_d[i].item()
            out[f"mae/{i}"] = mae_d[i].item()
            out[f"r2/{i}"] = r2_d[i].item()
    return out


class RegressionEvaluator(Evaluator):
    """MSE, MAE, RMSE and R² of ``model(inputs)`` against the targets of ``data.eval_set()``.

    Example::

        from mlcore.evaluation.regression import RegressionEvaluator, RegressionEvaluatorConfig

        metrics = RegressionEvaluator(RegressionEvaluatorConfig(batch_size=512)).evaluate(
            model, data, device="cpu", out_dir="runs/x"
        )  # {"mse": ..., "mae": ..., "rmse": ..., "r2": ..., "num_samples": ...}
    """

    metrics = ("mse", "mae", "rmse", "r2")

    def __init__(self, config: RegressionEvaluatorConfig | None = None) -> None:
        super().__init__(config or RegressionEvaluatorConfig())

    def compute(self, predictions: Any, targets: Any) -> dict[str, float]:
        """The regression figures for the whole split."""
        return regression_metrics(predictions, targets, per_dim=self.config.per_dim)
