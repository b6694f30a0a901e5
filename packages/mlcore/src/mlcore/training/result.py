"""What :meth:`mlcore.training.Trainer.fit` returns, and the fixed set of reasons a run stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import attrs

#: Why training stopped. ``interrupted`` is recorded on disk (``training_stats.json``, ``last.pt``)
#: when Ctrl-C or SIGTERM ended the run; ``fit`` then raises :class:`mlcore.errors.RunInterrupted`.
StopReason = Literal["completed", "early_stopping", "time_limit", "interrupted"]
STOP_REASONS: tuple[str, ...] = get_args(StopReason)

#: ``training_stats.json``'s ``stopped_reason`` also says ``running`` while the run is alive (a run
#: killed with SIGKILL keeps it) and ``error`` when an exception ended the run.
StatsReason = Literal["completed", "early_stopping", "time_limit", "interrupted", "running", "error"]


@attrs.define
class FitResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        best_metric: best value of ``monitor`` (``inf``/``-inf`` if no epoch completed).
        best_epoch: 1-based epoch of the best value (0 if none).
        epochs_run: epochs completed, including those of earlier, resumed sessions.
        stopped_reason: ``completed`` | ``early_stopping`` | ``time_limit`` | ``interrupted``.
        history: one record per epoch: ``epoch``, ``train_loss``, ``val_loss`` (``None`` without a
            validation set), ``lr`` (used in the epoch), ``seconds`` (training + validation), ``grad_norm`` /
            ``grad_norm_max`` (mean / max global gradient norm before clipping, over every optimizer step when
            clipping or a callback uses it, else over every ``_loop.GRAD_NORM_EVERY``-th step) and the model's extras
            (``train_<name>``, ``val_<name>``).
        train_seconds: sum of the epochs' seconds (training + validation, all sessions).
        best_checkpoint, last_checkpoint: ``<run_dir>/checkpoints/best.pt`` and ``last.pt``.
        monitor: the metric that was monitored (``train_loss`` when ``val_loss`` had no val set).
    """

    best_metric: float
    best_epoch: int
    epochs_run: int
    stopped_reason: StopReason
    history: list[dict[str, Any]]
    train_seconds: float
    best_checkpoint: Path
    last_checkpoint: Path
    monitor: str = "val_loss"
