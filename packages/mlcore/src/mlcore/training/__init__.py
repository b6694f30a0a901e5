"""The generic supervised trainer: :class:`Trainer`, :class:`TrainerConfig`, :class:`FitResult`, :class:`Callback`.

See :mod:`mlcore.training.trainer` for the loss contract, resume and stopping rules, and
:mod:`mlcore.training.checkpoint` for the checkpoint format.
"""

from __future__ import annotations

from mlcore.training.callbacks import Callback, EarlyStopping
from mlcore.training.config import TrainerConfig
from mlcore.training.trainer import FitResult, Trainer

__all__ = ["Callback", "EarlyStopping", "FitResult", "Trainer", "TrainerConfig"]
