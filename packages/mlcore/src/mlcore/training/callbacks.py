"""Training callbacks: the trainer's extension point.

A callback overrides any of the hooks below; each receives the running
:class:`~mlcore.training.Trainer`, of which it may use what :class:`TrainerView` lists, and can end
training by setting ``trainer.should_stop = True``.
A callback that keeps state across epochs returns it from :meth:`Callback.state_dict` so a
resumed run continues exactly where it stopped.

Example::

    from mlcore.training import Callback

    class PrintBest(Callback):
        def on_epoch_end(self, trainer, epoch, record):
            if trainer.best_epoch == epoch:
                print(f"new best at epoch {epoch}: {trainer.best_metric:.4f}")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from mlcore.config import non_negative, one_of, positive

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlcore.training.result import FitResult


class TrainerView(Protocol):
    """What a callback may read from the trainer it is handed (and ``should_stop``/``stop_reason`` to set).

    Attributes:
        model: the model being trained; optimizer, scheduler: its optimizer and epoch scheduler.
        epoch: the epoch being run (1-based); history: the records of the finished epochs.
        best_metric, best_epoch, monitor: the best value of the monitored metric so far, and where.
        run_dir, device: the run directory and the training device.
        should_stop, stop_reason: set ``should_stop = True`` to end training after this epoch.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    epoch: int
    history: list[dict[str, Any]]
    best_metric: float
    best_epoch: int
    monitor: str
    run_dir: Path
    device: torch.device
    should_stop: bool
    stop_reason: str

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far (all sessions)."""

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0, or not distributed)."""

    def log_scalars(self, values: Mapping[str, float | None], step: int) -> None:
        """Send scalars to every tracker (``None`` values are skipped)."""

    def log_histogram(self, name: str, values: torch.Tensor, step: int) -> None:
        """Send a histogram to every tracker."""


class Callback:
    """Base class: every hook is a no-op. Epoch numbers are 1-based (the epoch being run/just run).

    ``state_key`` names the callback's :meth:`state_dict` in ``last.pt``; by default a callback
    named in ``trainer.callbacks`` uses that name and one passed in code its class path. Set it
    when two instances of one class are given in code and each must get its own state back.
    """

    state_key: str | None = None

    def on_fit_start(self, trainer: TrainerView) -> None:
        """Called once after setup (and after a resume restored the state), before the first epoch."""

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None:
        """Called before the training batches of ``epoch``."""

    def on_before_optimizer_step(self, trainer: TrainerView, grad_norm: torch.Tensor) -> None:
        """Called after backward (gradients unscaled and clipped) and before ``optimizer.step()``.

        ``grad_norm`` is the global gradient norm before clipping (a 0-d tensor).
        """

    def on_batch_end(self, trainer: TrainerView, batch_idx: int, loss: torch.Tensor, logs: dict[str, float]) -> None:
        """Called after each training batch with its (detached) loss and the model's extra values."""

    def on_validation_end(self, trainer: TrainerView, epoch: int, metrics: dict[str, Any]) -> None:
        """Called after validation with ``{"val_loss": ..., "val_<name>": ...}`` (empty without a val set)."""

    def on_epoch_end(self, trainer: TrainerView, epoch: int, record: dict[str, Any]) -> None:
        """Called with the epoch's history record, before ``last.pt``/``best.pt`` are written.

        ``trainer.best_epoch == epoch`` tells whether this epoch is the new best.
        """

    def on_fit_end(self, trainer: TrainerView, result: FitResult) -> None:
        """Called once when training ends for any reason (the model then holds the best weights)."""

    def on_exception(self, trainer: TrainerView, exc: BaseException) -> None:
        """Called when training fails with ``exc`` (instead of :meth:`on_fit_end`); the error then propagates."""

    def wants_step_hooks(self, epoch: int) -> bool:
        """Whether :meth:`on_before_optimizer_step` and :meth:`on_batch_end` run during ``epoch``.

        A callback that samples returns ``False`` for the other epochs; the step loop then skips it
        (and, without clipping, measures the gradient norm only every ``GRAD_NORM_EVERY`` steps).
        """
        return True

    def state_dict(self) -> dict[str, Any]:
        """State to keep in ``last.pt`` for resuming (tensors and plain values only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


@attrs.define
class EarlyStoppingConfig:
    """Options of the ``early_stopping`` callback (see :class:`EarlyStopping`)."""

    monitor: str = "val_loss"
    patience: int = attrs.field(default=5, validator=positive)
    min_delta: float = attrs.field(default=0.0, validator=non_negative)
    mode: str = attrs.field(default="min", validator=one_of("min", "max"))


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Registered as ``early_stopping`` (options: :class:`EarlyStoppingConfig`); ``trainer.patience``
    adds one that monitors ``trainer.monitor``.

    Args:
        monitor: a key of the epoch record, e.g. ``"val_loss"`` (or an :class:`EarlyStoppingConfig`).
        patience: epochs without improvement before stopping (>= 1).
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"`` or ``"max"``.
    """

    def __init__(
        self,
        monitor: str | EarlyStoppingConfig = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "min",
    ) -> None:
        if isinstance(monitor, EarlyStoppingConfig):
            cfg = monitor
            monitor, patience, min_delta, mode = cfg.monitor, cfg.patience, cfg.min_delta, cfg.mode
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r} is not allowed (allowed: min, max)")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.stopped_epoch = 0

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer: TrainerView, epoch: int, record: dict[str, Any]) -> None:
        """Update the counter and set ``trainer.should_stop`` when patience is exhausted."""
        value = record.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self.improved(value):
            self.best, self.wait = float(value), 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.should_stop = True
            trainer.stop_reason = "early_stopping"

    def state_dict(self) -> dict[str, Any]:
        """Best value and epochs waited."""
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best = float(state["best"])
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state.get("stopped_epoch", 0))


@attrs.define
class GradHistogramsConfig:
    """Options of the ``grad_histograms`` callback.

    Attributes:
        every_n_epochs: log the histograms in epoch 1 and every n-th epoch (1 = every epoch). Only
            those epochs pay for per-step gradient norms and one histogram per parameter.
    """

    every_n_epochs: int = attrs.field(default=10, validator=positive)


class GradientHistogramCallback(Callback):
    """Gradient-norm and weight histograms to the trackers, in epoch 1 and every ``every_n_epochs``-th.

    In those epochs it records, at every optimizer step, the global gradient norm and each
    parameter's gradient norm (one fused ``torch._foreach_norm``); at the end of the epoch it logs
    the histograms ``grad_norm/global`` and ``grad_norm/<param>`` over the epoch's steps and
    ``weights/<param>``. Other epochs cost nothing. Registered as ``grad_histograms``.
    """

    def __init__(self, config: GradHistogramsConfig | None = None) -> None:
        self.config = config if config is not None else GradHistogramsConfig()
        self._global: list[torch.Tensor] = []
        self._per_param: list[torch.Tensor] = []
        self._names: list[str] = []

    def wants_step_hooks(self, epoch: int) -> bool:
        """Epoch 1 and every ``every_n_epochs``-th epoch."""
        return epoch == 1 or epoch % self.config.every_n_epochs == 0

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None:
        """Reset the epoch's records."""
        self._global, self._per_param = [], []

    def on_before_optimizer_step(self, trainer: TrainerView, grad_norm: torch.Tensor) -> None:
        """Record the global and per-parameter gradient norms of this step."""
        import torch

        named = [(n, p.grad) for n, p in trainer.model.named_parameters() if p.grad is not None]
        if not named:
            return
        self._names = [n for n, _ in named]
        norms = torch._foreach_norm([g.detach() for _, g in named])
        self._global.append(grad_norm.detach().float().reshape(()))
        self._per_param.append(torch.stack([n.float() for n in norms]))

    def on_epoch_end(self, trainer: TrainerView, epoch: int, record: dict[str, Any]) -> None:
        """Log the histograms of the epoch (in the epochs :meth:`wants_step_hooks` selects)."""
        import torch

        if not self.wants_step_hooks(epoch):
            return
        if self._global:
            trainer.log_histogram("grad_norm/global", torch.stack(self._global).cpu(), epoch)
            per = torch.stack(self._per_param).cpu()  # steps x params
            if per.shape[1] == len(self._names):
                for i, name in enumerate(self._names):
                    trainer.log_histogram(f"grad_norm/{name}", per[:, i], epoch)
        for name, p in trainer.model.named_parameters():
            trainer.log_histogram(f"weights/{name}", p.detach().float().cpu(), epoch)


@attrs.define
class InferenceTimeConfig:
    """Options of the ``inference_time`` callback.

    Attributes:
        batch_size: batch of ``model.example_input(batch_size)`` that is timed.
        repeats: timed forward passes per measurement (after 5 warm-up passes); the mean is logged.
        every_n_epochs: measure in epoch 1 and every n-th epoch.
    """

    batch_size: int = attrs.field(default=1, validator=positive)
    repeats: int = attrs.field(default=20, validator=positive)
    every_n_epochs: int = attrs.field(default=1, validator=positive)


class InferenceTime(Callback):
    """Time the model's forward pass (eval mode, no gradients) at the end of an epoch.

    Logs ``time/inference_ms`` to the trackers and adds ``inference_ms`` to the epoch record
    (``training_stats.json``). The input is ``model.example_input(batch_size)``; a model without
    ``example_input`` is not timed (logged once). Registered as ``inference_time``.
    """

    def __init__(self, config: InferenceTimeConfig | None = None) -> None:
        self.config = config if config is not None else InferenceTimeConfig()
        self._warned = False
        self.last_ms: float | None = None

    def on_epoch_end(self, trainer: TrainerView, epoch: int, record: dict[str, Any]) -> None:
        """Measure in the selected epochs (see :class:`InferenceTimeConfig`)."""
        import logging
        import time

        import torch

        cfg = self.config
        if not (epoch == 1 or epoch % cfg.every_n_epochs == 0):
            return
        model = trainer.model
        make = getattr(model, "example_input", None)
        if not callable(make):
            if not self._warned:
                logging.getLogger(__name__).info("inference_time: the model has no example_input(); not timed")
                self._warned = True
            return
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        from mlcore.training.batches import move_to_device

        x = move_to_device(make(cfg.batch_size), device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for _ in range(5):
                    model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                for _ in range(cfg.repeats):
                    model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
        finally:
            model.train(was_training)
        ms = (time.perf_counter() - t0) * 1000.0 / cfg.repeats
        self.last_ms = ms
        record["inference_ms"] = ms
        trainer.log_scalars({"time/inference_ms": ms}, epoch)


class LearningRateLogger(Callback):
    """Log the learning rate of every parameter group at every optimizer step (``lr/group<i>``).

    Useful to check a warm-up; registered as ``lr_warmup_log``.
    """

    def __init__(self) -> None:
        self.values: list[tuple[int, float]] = []

    def on_batch_end(self, trainer: TrainerView, batch_idx: int, loss: torch.Tensor, logs: dict[str, float]) -> None:
        """Send ``lr/group<i>`` for the current global step."""
        groups = trainer.optimizer.param_groups
        scalars = {f"lr/group{i}": float(g["lr"]) for i, g in enumerate(groups)}
        self.values.append((trainer.global_step, scalars["lr/group0"]))
        trainer.log_scalars(scalars, trainer.global_step)


def build_callbacks(entries: Sequence[str | dict[str, Any]]) -> list[Callback]:
    """Build the registered callbacks of ``trainer.callbacks`` (names or ``{name = ..., options}`` tables)."""
    from mlcore.errors import PluginError
    from mlcore.registry import get_registry
    from mlcore.training.config import callback_config, callback_entry

    out = []
    for entry in entries:
        name, options = callback_entry(entry)
        config = callback_config(name, options)
        spec = get_registry().get("callback", name)
        obj = spec.build(config) if spec.config is not None else spec.build()
        if not isinstance(obj, Callback):
            raise PluginError(f"callback {name!r} ({spec.target}) is not a Callback subclass")
        out.append(obj)
    return out
