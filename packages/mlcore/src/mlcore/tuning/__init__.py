"""Hyperparameter search (``mlcore tune``): the ``[search]`` table, Optuna and Ray Tune engines.

The entry point is :func:`mlcore.api.tune`; see docs/tuning.md. Importing this package imports
neither Optuna nor Ray.
"""

from __future__ import annotations

import importlib.util

from mlcore.errors import MlcoreError
from mlcore.tuning.reporting import report, reporting
from mlcore.tuning.results import TrialRow, TuneResult
from mlcore.tuning.space import Param, SearchConfig, parse_search

__all__ = ["Param", "SearchConfig", "TrialRow", "TuneResult", "parse_search", "report", "reporting", "require"]

_EXTRAS = {"optuna": (("optuna",), "mlcore[tune]"), "ray": (("ray", "optuna"), "mlcore[ray]")}


def require(engine: str) -> None:
    """One-line :class:`MlcoreError` when the engine's packages are not installed."""
    modules, extra = _EXTRAS.get(engine, ((), ""))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MlcoreError(f'--engine {engine} needs {", ".join(missing)}: pip install "{extra}"')
