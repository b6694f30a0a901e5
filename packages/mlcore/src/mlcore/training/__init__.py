"""The generic supervised trainer: :class:`Trainer`, :class:`TrainerConfig`, :class:`FitResult`, :class:`Callback`.

See :mod:`mlcore.training.trainer` for the loss contract, resume and stopping rules, and
:mod:`mlcore.training.checkpoint` for the checkpoint format. The names are resolved lazily, so
``from mlcore.training.config import TrainerConfig`` (used by pipeline configs) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcore.training.callbacks import Callback, EarlyStopping
    from mlcore.training.config import TrainerConfig
    from mlcore.training.result import FitResult
    from mlcore.training.trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "FitResult", "Trainer", "TrainerConfig"]

_WHERE = {
    "Callback": "mlcore.training.callbacks",
    "EarlyStopping": "mlcore.training.callbacks",
    "TrainerConfig": "mlcore.training.config",
    "FitResult": "mlcore.training.result",
    "Trainer": "mlcore.training.trainer",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use."""
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'mlcore.training' has no attribute {name!r}")
