"""One trial of a search: an ordinary ``mlcore run`` with the sampled values set, reporting each epoch.

Shared by the Optuna and Ray Tune engines; imports neither.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from mlcore.errors import ConfigError
from mlcore.tuning.reporting import reporting
from mlcore.tuning.space import SearchConfig, as_override

log = logging.getLogger(__name__)


@attrs.define
class TrialSetup:
    """Everything a trial needs to run, picklable (sent to worker processes and Ray actors).

    ``config`` is the base config document (without ``[search]``); ``overrides`` the user's ``--set``.
    ``resolve_fn`` and ``run_fn`` are :func:`mlcore.api.resolve` and :func:`mlcore.api.run`, handed
    in by :func:`mlcore.api.tune` (so the search layer does not import the API that exposes it).
    """

    plugin: str | None
    pipeline: str | None
    profile: str | None
    config: dict[str, Any]
    overrides: tuple[str, ...]
    search: SearchConfig
    out_dir: Path
    resolve_fn: Callable[..., Any]
    run_fn: Callable[..., Any]
    seed: int | None = None
    device: str | None = None
    threads: int | None = None

    def overrides_for(self, params: Mapping[str, Any]) -> list[str]:
        """The user's overrides, then one ``key=value`` per sampled parameter."""
        return [*self.overrides, *(as_override(k, v) for k, v in params.items())]

    def resolve(self, params: Mapping[str, Any]) -> Any:
        """The resolved run of a trial with ``params`` (:func:`mlcore.api.resolve`)."""
        return self.resolve_fn(
            self.plugin,
            pipeline=self.pipeline,
            profile=self.profile,
            config=self.config,
            overrides=self.overrides_for(params),
            seed=self.seed,
            device=self.device,
            threads=self.threads,
        )


class TrialRecorder:
    """The reporter of one trial: keeps every record and passes the ``report`` value on.

    ``forward(value, step)`` is the engine's hook (Optuna: report and maybe prune; Ray: report).
    """

    def __init__(self, search: SearchConfig, forward: Callable[[float, int], None] | None = None) -> None:
        self.search = search
        self.forward = forward
        self.records: list[tuple[int, dict[str, Any]]] = []
        self.reported: list[tuple[int, float]] = []

    def report(self, record: Mapping[str, Any], step: int) -> None:
        """Keep ``record``; forward its ``report`` value when it is a finite number."""
        self.records.append((step, dict(record)))
        value = _number(record.get(self.search.report_key))
        if value is None:
            if len(self.records) == 1:
                keys = ", ".join(sorted(k for k, v in record.items() if _number(v) is not None))
                log.warning(
                    "search.report=%r is not in the per-epoch records (%s): nothing to prune on",
                    self.search.report_key,
                    keys,
                )
            return
        self.reported.append((step, value))
        if self.forward is not None:
            self.forward(value, step)

    @property
    def epochs(self) -> int:
        """Epochs (or evaluation points) this trial ran."""
        return len(self.records)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def objective_value(metrics: Mapping[str, Any], recorder: TrialRecorder) -> float:
    """The trial's value: ``metrics[search.metric]``, else the best per-epoch value of that key."""
    search = recorder.search
    value = _number(metrics.get(search.metric))
    if value is not None:
        return value
    per_epoch = [v for _, rec in recorder.records if (v := _number(rec.get(search.metric))) is not None]
    if per_epoch:
        return min(per_epoch) if search.direction == "minimize" else max(per_epoch)
    final = ", ".join(sorted(k for k, v in metrics.items() if _number(v) is not None)) or "none"
    epoch_keys = sorted({k for _, rec in recorder.records for k, v in rec.items() if _number(v) is not None})
    raise ConfigError(
        f"search.metric={search.metric!r}: the run reported no such number "
        f"(its metrics: {final}; per-epoch: {', '.join(epoch_keys) or 'none'})"
    )


def run_trial(
    setup: TrialSetup, params: Mapping[str, Any], run_dir: Path, recorder: TrialRecorder
) -> tuple[float, Any]:
    """Run one trial in ``run_dir`` with ``params``; returns ``(value, RunResult)``.

    Exceptions the reporter raises (a pruned trial) propagate; so do the run's own errors.
    """
    with reporting(recorder):
        result = setup.run_fn(
            setup.plugin,
            pipeline=setup.pipeline,
            profile=setup.profile,
            config=setup.config,
            overrides=setup.overrides_for(params),
            out=run_dir,
            seed=setup.seed,
            device=setup.device,
            threads=setup.threads,
            progress=False,
        )
    return objective_value(result.metrics, recorder), result


def check_space(setup: TrialSetup) -> None:
    """Resolve the config once per searched key (its first grid point) so a wrong key fails before any trial."""
    setup.resolve({})  # the base config's own mistakes, without a search key in front
    for param in setup.search.params:
        value = param.grid_values()[0] if (param.type in ("int", "categorical") or param.values) else param.low
        try:
            setup.resolve({param.key: value})
        except ConfigError as exc:
            raise ConfigError(f"search.space.{param.key}: {exc}") from None
