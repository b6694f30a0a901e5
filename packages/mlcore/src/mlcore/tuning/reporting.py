"""How a running trial reports its per-epoch metric to the search that started it.

A search engine activates a reporter with :func:`reporting`; while it is active, every
:class:`~mlcore.training.Trainer` adds :class:`ReportCallback` (so each epoch's record is
reported), and any other trainer (e.g. nav-rl's SB3 trainer, once per evaluation) calls
:func:`report` itself. Without an active reporter, :func:`report` does nothing, so a trainer
may call it unconditionally. The reporter may end the trial (Optuna's pruner raises
``optuna.TrialPruned``; Ray Tune stops the trial's process).

This module imports neither Optuna nor Ray.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from mlcore.training.callbacks import Callback

if TYPE_CHECKING:
    from mlcore.training.callbacks import TrainerView


class Reporter(Protocol):
    """What a search engine hands a trial: called with each epoch's (or evaluation's) record."""

    def report(self, record: Mapping[str, Any], step: int) -> None:
        """Take one record at ``step`` (1-based epoch or evaluation number); may raise to end the trial."""


_ACTIVE: list[Reporter] = []
_STATE: dict[str, Any] = {"trainer": None, "warm_start": None}


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Make ``reporter`` receive :func:`report` calls while the block runs."""
    _ACTIVE.append(reporter)
    try:
        yield reporter
    finally:
        _ACTIVE.remove(reporter)


def active() -> bool:
    """Whether a search is listening (a trial is running in this process)."""
    return bool(_ACTIVE)


def current_trainer() -> Any:
    """The core trainer whose epoch is being reported (during :func:`report` from :class:`ReportCallback`)."""
    return _STATE["trainer"]


def warm_start(state_dict: Mapping[str, Any] | None) -> None:
    """Weights the next core trainer of this search loads into its model before its first epoch
    (population-based training continues a trial from another trial's weights); ``None`` clears them."""
    _STATE["warm_start"] = state_dict


def report(record: Mapping[str, Any], step: int) -> None:
    """Send one per-epoch record to the active reporter (a no-op outside a search)."""
    for reporter in list(_ACTIVE):
        reporter.report(record, step)


class ReportCallback(Callback):
    """Reports each epoch's record (``train_loss``, ``val_loss``, ``val_<metric>`` ...) with :func:`report`.

    The trainer adds it by itself while a search is active (see :func:`session_callbacks`).
    """

    def on_fit_start(self, trainer: TrainerView) -> None:
        """Load the weights :func:`warm_start` left for this trial, if any."""
        state = _STATE["warm_start"]
        if state is not None:
            trainer.model.load_state_dict(state)
            _STATE["warm_start"] = None

    def on_epoch_end(self, trainer: TrainerView, epoch: int, record: dict[str, Any]) -> None:
        """Report the record, with the trainer's best monitored value so far as ``best_metric``."""
        if trainer.is_main:
            _STATE["trainer"] = trainer
            try:
                report({**record, "best_metric": trainer.best_metric}, epoch)
            finally:
                _STATE["trainer"] = None


def session_callbacks() -> list[Callback]:
    """The callbacks a trainer adds for the active search (none outside a search)."""
    return [ReportCallback()] if _ACTIVE else []
