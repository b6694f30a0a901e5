"""Built-in losses: callables ``loss(prediction, target) -> scalar tensor``.

Each is an ``nn.Module`` built as ``Loss()`` or ``Loss(config)`` (registered as ``mse``, ``mae``,
``huber``, ``cross_entropy`` and ``hybrid`` by :mod:`mlcore.builtin.plugin`)::

    from mlcore.losses import HybridConfig, HybridLoss

    loss_fn = HybridLoss(HybridConfig(ratio=0.3))   # 0.3 * MAE + 0.7 * MSE
    value = loss_fn(prediction, target)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mlcore.builtin.configs import CrossEntropyConfig, HuberConfig, HybridConfig

__all__ = [
    "CrossEntropyConfig",
    "CrossEntropyLoss",
    "HuberConfig",
    "HuberLoss",
    "HybridConfig",
    "HybridLoss",
    "MAELoss",
    "MSELoss",
]


def _check_shapes(name: str, prediction: torch.Tensor, target: torch.Tensor) -> None:
    """Refuse silent broadcasting between prediction and target (a classic regression bug)."""
    if prediction.shape != target.shape:
        raise ValueError(f"{name}: prediction shape {tuple(prediction.shape)} != target shape {tuple(target.shape)}")


class MSELoss(nn.Module):
    """Mean squared error over every element."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return ``mean((prediction - target) ** 2)``."""
        _check_shapes("mse", prediction, target)
        return F.mse_loss(prediction, target)


class MAELoss(nn.Module):
    """Mean absolute error (L1) over every element."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return ``mean(|prediction - target|)``."""
        _check_shapes("mae", prediction, target)
        return F.l1_loss(prediction, target)


class HuberLoss(nn.Module):
    """Huber loss: ``0.5 e^2`` for ``|e| <= delta``, ``delta (|e| - 0.5 delta)`` above."""

    def __init__(self, config: HuberConfig | None = None) -> None:
        super().__init__()
        self.config = config or HuberConfig()

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean Huber loss over every element."""
        _check_shapes("huber", prediction, target)
        return F.huber_loss(prediction, target, delta=self.config.delta)


class CrossEntropyLoss(nn.Module):
    """Cross-entropy between class logits ``(N, C, ...)`` and integer labels ``(N, ...)`` (or probabilities)."""

    def __init__(self, config: CrossEntropyConfig | None = None) -> None:
        super().__init__()
        self.config = config or CrossEntropyConfig()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy; integer targets of shape ``(N, 1)`` are squeezed to ``(N,)``."""
        if target.dtype in (torch.int32, torch.int64, torch.uint8, torch.int16, torch.int8):
            if target.dim() == logits.dim() and target.shape[1] == 1:
                target = target.squeeze(1)
            target = target.long()
        return F.cross_entropy(logits, target, label_smoothing=self.config.label_smoothing)


class HybridLoss(nn.Module):
    """``ratio * MAE + (1 - ratio) * MSE``: MSE's smooth gradients with some of MAE's robustness."""

    def __init__(self, config: HybridConfig | None = None) -> None:
        super().__init__()
        self.config = config or HybridConfig()

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The weighted sum of mean absolute and mean squared error."""
        _check_shapes("hybrid", prediction, target)
        ratio = self.config.ratio
        return ratio * F.l1_loss(prediction, target) + (1.0 - ratio) * F.mse_loss(prediction, target)
