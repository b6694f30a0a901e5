"""The ``[search]`` table of a config: what to optimise and the search space (``[search.space]``).

Format (see ``docs/tuning.md``)::

    [search]
    metric = "best_metric"      # a key of the run's metrics, or of its per-epoch records
    direction = "minimize"      # or "maximize"
    report = "val_loss"         # per-epoch key fed to the pruner [default: metric]
    trials = 20
    sampler = "tpe"             # tpe | random | grid
    pruner = "median"           # median | halving | none

    [search.space]
    "trainer.lr" = { type = "log", low = 1e-4, high = 1e-1 }
    "trainer.batch_size" = { type = "categorical", choices = [32, 64, 128] }
    "trainer.scheduler" = { type = "categorical", choices = ["cosine", "step"] }
    "trainer.step_size" = { type = "int", low = 2, high = 10, when = { "trainer.scheduler" = "step" } }

Nothing here imports Optuna or Ray: a space is parsed and checked without either installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from mlcore.errors import ConfigError, did_you_mean

ParamType = Literal["int", "float", "log", "categorical"]
PARAM_TYPES = ("int", "float", "log", "categorical")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving", "none")
DIRECTIONS = ("minimize", "maximize")
SEARCH_KEYS = (
    "metric",
    "direction",
    "report",
    "trials",
    "sampler",
    "pruner",
    "seed",
    "jobs",
    "startup_trials",
    "warmup_epochs",
    "space",
)
PARAM_KEYS = ("type", "low", "high", "step", "log", "choices", "values", "when")


@attrs.frozen
class Param:
    """One searched config key (dotted, e.g. ``trainer.lr``).

    ``when``: ``{other key: allowed value(s)}``; the key is only sampled (and set) when every other
    key took one of its allowed values. ``values``: the points a grid search tries for a ``float``/``log``.
    """

    key: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    values: tuple[Any, ...] = ()
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def active(self, chosen: Mapping[str, Any]) -> bool:
        """Whether the conditions in ``when`` hold for the values chosen so far."""
        return all(key in chosen and chosen[key] in allowed for key, allowed in self.when)

    def grid_values(self) -> list[Any]:
        """The points a grid search tries (categorical choices, every int step, or ``values``)."""
        if self.values:
            return list(self.values)
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            assert self.low is not None and self.high is not None
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        raise ConfigError(f"search.space.{self.key}: a grid search needs `values = [...]` for a {self.type} parameter")


@attrs.frozen
class SearchConfig:
    """The parsed ``[search]`` table (see the module docstring for the format)."""

    metric: str
    params: tuple[Param, ...]
    direction: str = "minimize"
    report: str = ""
    trials: int = 20
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    jobs: int = 1
    startup_trials: int = 5
    warmup_epochs: int = 1

    @property
    def report_key(self) -> str:
        """The per-epoch key reported to the pruner (``report``, else ``metric``)."""
        return self.report or self.metric

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is better than ``b`` in this search's direction."""
        return a < b if self.direction == "minimize" else a > b

    def sample(self, suggest: Callable[[Param], Any]) -> dict[str, Any]:
        """``{key: value}`` for the active params, in order; ``suggest(param)`` draws one value."""
        chosen: dict[str, Any] = {}
        for param in self.params:
            if param.active(chosen):
                chosen[param.key] = suggest(param)
        return chosen

    def grid(self) -> dict[str, list[Any]]:
        """The grid of every param (a grid search covers conditional keys' points too)."""
        return {p.key: p.grid_values() for p in self.params}

    def to_document(self) -> dict[str, Any]:
        """The ``[search]`` table as plain data (written beside a study as ``search.toml``)."""
        space: dict[str, Any] = {}
        for p in self.params:
            entry: dict[str, Any] = {"type": p.type}
            for name in ("low", "high", "step"):
                if getattr(p, name) is not None:
                    entry[name] = getattr(p, name)
            if p.log and p.type != "log":
                entry["log"] = True
            if p.choices:
                entry["choices"] = list(p.choices)
            if p.values:
                entry["values"] = list(p.values)
            if p.when:
                entry["when"] = {k: list(v) for k, v in p.when}
            space[p.key] = entry
        doc = attrs.asdict(self, recurse=False, filter=lambda a, _: a.name != "params")
        return {**doc, "space": space}


def _flatten_space(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"lr": {...}}}`` and ``{"trainer.lr": {...}}`` both give ``{"trainer.lr": {...}}``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and "type" not in value and value:
            out.update(_flatten_space(value, f"{name}."))
        else:
            out[name] = value
    return out


def _number(where: str, name: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"{where}.{name}={value!r}: must be {kind}")
    if integer and not float(value).is_integer():
        raise ConfigError(f"{where}.{name}={value!r}: must be an integer for an int parameter")
    return value


def parse_param(key: str, spec: Any) -> Param:
    """One ``[search.space]`` entry as a :class:`Param`; a one-line :class:`ConfigError` names the key."""
    where = f"search.space.{key}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f'{where}: expected a table like {{ type = "float", low = 0.0, high = 1.0 }}, got {spec!r}')
    unknown = [k for k in spec if k not in PARAM_KEYS]
    if unknown:
        hint = did_you_mean(unknown[0], list(PARAM_KEYS))
        raise ConfigError(f"{where}: unknown option {unknown[0]!r} (allowed: {', '.join(PARAM_KEYS)}){hint}")
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        hint = did_you_mean(str(kind), list(PARAM_TYPES))
        raise ConfigError(f"{where}.type={kind!r}: must be one of {', '.join(PARAM_TYPES)}{hint}")
    when: list[tuple[str, tuple[Any, ...]]] = []
    raw_when = spec.get("when", {})
    if not isinstance(raw_when, Mapping) or (not raw_when and "when" in spec):
        raise ConfigError(f'{where}.when: expected a table like {{ "trainer.scheduler" = "step" }}')
    for other, allowed in raw_when.items():
        values = tuple(allowed) if isinstance(allowed, list | tuple) else (allowed,)
        if not values:
            raise ConfigError(f"{where}.when.{other}: lists no value")
        when.append((str(other), values))
    values = spec.get("values", [])
    if not isinstance(values, list | tuple):
        raise ConfigError(f"{where}.values: expected a list, got {values!r}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list | tuple) or not choices:
            raise ConfigError(f"{where}.choices: a categorical parameter needs a non-empty list of choices")
        for c in choices:
            if not (c is None or isinstance(c, bool | int | float | str)):
                raise ConfigError(f"{where}.choices: {c!r} is not a number, string, boolean")
        extra = [k for k in ("low", "high", "step", "log") if k in spec]
        if extra:
            raise ConfigError(f"{where}.{extra[0]}: does not apply to a categorical parameter (use choices)")
        return Param(key, "categorical", choices=tuple(choices), values=tuple(values), when=tuple(when))
    if "choices" in spec:
        raise ConfigError(f"{where}.choices: only a categorical parameter has choices (type={kind!r})")
    for name in ("low", "high"):
        if name not in spec:
            raise ConfigError(f"{where}: a {kind} parameter needs {name}")
    integer = kind == "int"
    low = _number(where, "low", spec["low"], integer=integer)
    high = _number(where, "high", spec["high"], integer=integer)
    if low > high:
        raise ConfigError(f"{where}: low={low!r} is above high={high!r}")
    log = kind == "log" or bool(spec.get("log", False))
    if not isinstance(spec.get("log", False), bool):
        raise ConfigError(f"{where}.log={spec['log']!r}: must be true or false")
    if log and low <= 0:
        raise ConfigError(f"{where}.low={low!r}: a log-scale parameter needs low > 0")
    step = spec.get("step")
    if step is not None:
        step = _number(where, "step", step, integer=integer)
        if step <= 0:
            raise ConfigError(f"{where}.step={step!r}: must be positive")
        if log:
            raise ConfigError(f"{where}.step: a log-scale parameter cannot have a step")
    if integer:
        low, high = int(low), int(high)
        step = int(step) if step is not None else None
    return Param(
        key,
        "log" if kind == "log" else kind,  # type: ignore[arg-type]
        low=low,
        high=high,
        step=step,
        log=log,
        values=tuple(values),
        when=tuple(when),
    )


def _check_value(where: str, name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        hint = did_you_mean(str(value), [str(a) for a in allowed])
        raise ConfigError(f"{where}.{name}={value!r}: must be one of {', '.join(map(str, allowed))}{hint}")


def _int_field(table: Mapping[str, Any], name: str, default: int, minimum: int) -> int:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"search.{name}={value!r}: must be an integer >= {minimum}")
    return value


def parse_search(table: Any, *, source: str = "") -> SearchConfig:
    """Parse a ``[search]`` table; every mistake is a one-line :class:`ConfigError` naming the key."""
    prefix = f"{source}: " if source else ""
    try:
        return _parse_search(table)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None


def _parse_search(table: Any) -> SearchConfig:
    if not isinstance(table, Mapping):
        raise ConfigError("[search] must be a table (with metric and [search.space])")
    unknown = [k for k in table if k not in SEARCH_KEYS]
    if unknown:
        hint = did_you_mean(unknown[0], list(SEARCH_KEYS))
        raise ConfigError(f"search.{unknown[0]}: unknown key (allowed: {', '.join(SEARCH_KEYS)}){hint}")
    metric = table.get("metric")
    if not isinstance(metric, str) or not metric:
        raise ConfigError('search.metric: name the metric to optimise, e.g. metric = "val_loss"')
    report = table.get("report", "")
    if not isinstance(report, str):
        raise ConfigError(f"search.report={report!r}: must be the name of a per-epoch metric")
    direction = table.get("direction", "minimize")
    _check_value("search", "direction", direction, DIRECTIONS)
    sampler = table.get("sampler", "tpe")
    _check_value("search", "sampler", sampler, SAMPLERS)
    pruner = table.get("pruner", "median")
    _check_value("search", "pruner", pruner, PRUNERS)
    raw_space = table.get("space")
    if not isinstance(raw_space, Mapping) or not raw_space:
        raise ConfigError('search.space: needs at least one parameter, e.g. "trainer.lr" = { type = "log", ... }')
    flat = _flatten_space(raw_space)
    params = [parse_param(key, spec) for key, spec in flat.items()]
    keys = [p.key for p in params]
    for p in params:  # a condition names a key sampled before it, with values it can take
        for other, allowed in p.when:
            if other not in keys[: keys.index(p.key)]:
                where = f"search.space.{p.key}.when"
                if other in keys:
                    raise ConfigError(f"{where}: {other!r} must come before {p.key!r} in [search.space]")
                raise ConfigError(f"{where}: {other!r} is not a searched key{did_you_mean(other, keys)}")
            target = params[keys.index(other)]
            if target.type == "categorical":
                bad = [v for v in allowed if v not in target.choices]
                if bad:
                    raise ConfigError(
                        f"search.space.{p.key}.when.{other}: {bad[0]!r} is not one of its choices "
                        f"({', '.join(map(repr, target.choices))})"
                    )
    search = SearchConfig(
        metric=metric,
        params=tuple(params),
        direction=direction,
        report=report,
        trials=_int_field(table, "trials", 20, 1),
        sampler=sampler,
        pruner=pruner,
        seed=_int_field(table, "seed", 0, 0),
        jobs=_int_field(table, "jobs", 1, 1),
        startup_trials=_int_field(table, "startup_trials", 5, 0),
        warmup_epochs=_int_field(table, "warmup_epochs", 1, 0),
    )
    if sampler == "grid":
        search.grid()  # every param must have grid points
    return search


def as_override(key: str, value: Any) -> str:
    """``key=value`` with ``value`` written as TOML, as ``--set`` takes it (``model.size="large"``)."""
    import tomli_w

    return f"{key}={tomli_w.dumps({'v': value}).partition('=')[2].strip()}"
