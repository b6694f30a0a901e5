"""Optimizer and learning-rate scheduler factories for :class:`~mlcore.training.Trainer`.

Schedulers are stepped once per epoch. A linear warm-up (``torch.optim.lr_scheduler.LinearLR``)
runs for ``warmup_epochs`` epochs, then the main scheduler takes over. torch's ``SequentialLR``
cannot chain ``ReduceLROnPlateau`` (it needs a metric), so :class:`EpochScheduler` does the
hand-over itself for every kind, with one ``state_dict`` for checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import lr_scheduler

from mlcore.errors import ConfigError
from mlcore.training.config import OPTIMIZERS, SCHEDULERS, TrainerConfig


def build_optimizer(params: Iterable[Any], config: TrainerConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` with ``lr``/``weight_decay``/``momentum``."""
    name = config.optimizer
    if name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum)
    if name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum)
    raise ConfigError(f"trainer.optimizer={name!r} is not allowed (allowed: {', '.join(OPTIMIZERS)})")


class EpochScheduler:
    """Linear warm-up followed by a main scheduler; call :meth:`step` once at the end of each epoch.

    Args:
        optimizer: the optimizer whose learning rates are scheduled.
        main: the scheduler used after warm-up (``None`` = constant).
        warmup_epochs: length of the linear warm-up; the first epoch runs at ``lr / (warmup_epochs + 1)``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, main: Any = None, warmup_epochs: int = 0) -> None:
        self.optimizer = optimizer
        self.main = main  # created first: chainable schedulers then start from the full lr
        self.warmup_epochs = warmup_epochs
        self.warmup = (
            lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup_epochs + 1), total_iters=warmup_epochs)
            if warmup_epochs > 0
            else None
        )
        self.epoch = 0

    @property
    def needs_metric(self) -> bool:
        """Whether :meth:`step` needs the monitored metric (``plateau``)."""
        return isinstance(self.main, lr_scheduler.ReduceLROnPlateau)

    def step(self, metric: float | None = None) -> None:
        """Advance one epoch; ``metric`` is the monitored value (used by ``plateau``)."""
        if self.warmup is not None and self.epoch < self.warmup_epochs:
            self.warmup.step()
        elif self.main is not None:
            if self.needs_metric:
                if metric is not None:
                    self.main.step(metric)
            else:
                self.main.step()
        self.epoch += 1

    def get_last_lr(self) -> list[float]:
        """The current learning rate of each parameter group."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Plain state for checkpoints."""
        return {
            "epoch": self.epoch,
            "warmup": self.warmup.state_dict() if self.warmup is not None else None,
            "main": self.main.state_dict() if self.main is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.epoch = int(state["epoch"])
        if self.warmup is not None and state.get("warmup") is not None:
            self.warmup.load_state_dict(state["warmup"])
        if self.main is not None and state.get("main") is not None:
            self.main.load_state_dict(state["main"])


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainerConfig) -> EpochScheduler:
    """The scheduler named by ``config.scheduler``, wrapped with the configured warm-up."""
    name = config.scheduler
    main: Any
    if name == "cosine":
        main = lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, config.epochs - config.warmup_epochs), eta_min=config.min_lr
        )
    elif name == "step":
        main = lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    elif name == "plateau":
        main = lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max" if config.monitor_mode == "max" else "min",
            factor=config.gamma,
            patience=config.plateau_patience,
            min_lr=config.min_lr,
        )
    elif name == "none":
        main = None
    else:
        raise ConfigError(f"trainer.scheduler={name!r} is not allowed (allowed: {', '.join(SCHEDULERS)})")
    return EpochScheduler(optimizer, main, config.warmup_epochs)
