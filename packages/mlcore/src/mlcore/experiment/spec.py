"""The experiment file: ``[experiment]`` plus ``[[stage]]`` tables, validated into :class:`Experiment`.

Example (TOML; YAML with the same keys works too)::

    [experiment]
    name = "lqr-study"          # out defaults to experiments/<name> beside the file

    [[stage]]
    name = "data"
    kind = "data"
    dataset = "lqr"
    set = ["num_samples=500"]

    [[stage]]
    name = "train"
    kind = "train"
    plugin = "trc-control"
    set = ["dataset.path=${data.file}", "trainer.epochs=3"]
    seeds = [0, 1, 2]

    [[stage]]
    name = "evaluate"
    kind = "evaluate"
    needs = ["train"]
    select = "ensemble"         # best | last | ensemble
    top = 2

``${stage.key}`` in any string is replaced by an output of an earlier stage (and makes that stage a
dependency); ``${dir}`` is the stage's own directory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from mlcore.config import in_range, load_file, structure
from mlcore.errors import ConfigError

#: ``${name.key.subkey}`` or ``${dir}`` inside a string value
REFERENCE = re.compile(r"\$\{([A-Za-z_][\w-]*)((?:\.[\w-]+)*)\}")

Selection = Literal["best", "last", "ensemble"]


@attrs.define
class DataStage:
    """``kind = "data"``: :func:`mlcore.api.generate_data` into the stage directory.

    Outputs: ``dir``, ``files`` (the written paths) and ``file`` (the first of them).
    """

    dataset: str
    num_samples: int | None = None
    seed: int | None = None
    set: list[str] = attrs.field(factory=list)


@attrs.define
class TrainStage:
    """``kind = "train"``: :func:`mlcore.api.run` once per seed, into ``<stage dir>/seed-<n>``.

    ``plugin`` (default ``mlcore``, the generic ``train`` pipeline, which then needs ``config``),
    ``pipeline``, ``profile``, ``config`` (a file, relative to the experiment file) and ``set``
    mean what they mean for ``mlcore run``. Outputs: ``dir``, ``runs`` (one table per seed: ``dir``,
    ``seed``, ``monitor``, ``monitor_mode``, ``best_metric``, ``metrics``) and ``best_run``.
    """

    plugin: str = "mlcore"
    pipeline: str | None = None
    profile: str | None = None
    config: str | None = None
    set: list[str] = attrs.field(factory=list)
    seeds: list[int] = attrs.field(factory=lambda: [0])
    device: str = "auto"
    threads: int = attrs.field(default=0, validator=in_range(0, 4096))

    def __attrs_post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds={self.seeds}: each seed once")


@attrs.define
class EvaluateStage:
    """``kind = "evaluate"``: evaluate the model selected from the runs of the train stage(s) it needs.

    ``select``: ``best`` (``best.pt`` of the run with the best monitored value), ``last`` (``last.pt``
    of that run) or ``ensemble`` (the mean prediction of the ``best.pt`` of the ``top`` best runs;
    0 = all). Outputs: ``dir``, ``metrics``, ``checkpoints``.
    """

    select: Selection = "best"
    top: int = attrs.field(default=0, validator=in_range(0))
    device: str = "auto"
    set: list[str] = attrs.field(factory=list)


@attrs.define
class CompareStage:
    """``kind = "compare"``: :func:`mlcore.api.compare` of every run of the train stages it needs.

    Writes ``comparison.json`` and ``comparison.md``; outputs ``dir`` and ``rows``.
    """


@attrs.define
class ReportStage:
    """``kind = "report"``: ``report.md`` with each stage's state, the evaluation metrics and comparison."""

    title: str = ""


@attrs.define
class CommandStage:
    """``kind = "command"``: ``mlcore <args>`` in a new process, run from the experiment file's folder.

    ``kind = "search"`` is ``mlcore tune <args>``. A non-zero exit fails the stage. Outputs: ``dir``, ``command``.
    """

    args: list[str] = attrs.field(factory=list)


@attrs.define
class ApiStage:
    """``kind = "api"``: ``mlcore.api.<function>(**args)``; its return value becomes the outputs (``value``)."""

    function: str
    args: dict[str, Any] = attrs.field(factory=dict)


KINDS: dict[str, type] = {
    "data": DataStage,
    "train": TrainStage,
    "evaluate": EvaluateStage,
    "compare": CompareStage,
    "report": ReportStage,
    "command": CommandStage,
    "search": CommandStage,
    "api": ApiStage,
}

#: stage kinds whose runs ``evaluate`` / ``compare`` select from
RUN_KINDS = ("train",)

_NAME = re.compile(r"^[A-Za-z_][\w-]*$")


@attrs.define
class Stage:
    """One ``[[stage]]``: its name, kind, options (a kind's config), raw table and dependencies."""

    name: str
    kind: str
    options: Any
    raw: dict[str, Any]
    needs: list[str]


@attrs.define
class Experiment:
    """A parsed experiment file: the stages in file order (dependencies always come first)."""

    name: str
    path: Path
    out_dir: Path
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(f"{self.path}: no stage {name!r} (stages: {', '.join(s.name for s in self.stages)})")


def references(value: Any) -> set[str]:
    """The stage names ``${name...}`` refers to anywhere in ``value`` (``${dir}`` excluded)."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(m.group(1) for m in REFERENCE.finditer(value) if m.group(1) != "dir")
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= references(item)
    return found


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; errors name the file, the stage and the key."""
    p = Path(path)
    data = load_file(p)
    unknown = sorted(set(data) - {"experiment", "stage"})
    if unknown:
        raise ConfigError(f"{p}: unknown table(s) {', '.join(unknown)} (allowed: experiment, stage)")
    head = data.get("experiment") or {}
    if not isinstance(head, Mapping):
        raise ConfigError(f"{p}: [experiment] must be a table")
    bad = sorted(set(head) - {"name", "out"})
    if bad:
        raise ConfigError(f"{p}: experiment.{bad[0]} is not a known key (allowed: name, out)")
    name = str(head.get("name") or p.stem)
    out = Path(head["out"]) if head.get("out") else Path("experiments") / name
    out_dir = (out if out.is_absolute() else p.parent / out).resolve()  # outputs stay valid from any cwd
    tables = data.get("stage")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{p}: no stages: add [[stage]] tables (each with a name and a kind)")
    stages: list[Stage] = []
    for i, table in enumerate(tables):
        stages.append(_stage(p, i, table, [s.name for s in stages]))
    return Experiment(name=name, path=p, out_dir=out_dir, stages=stages)


def _stage(path: Path, index: int, table: Any, earlier: list[str]) -> Stage:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: stage #{index + 1} must be a table")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{path}: stage #{index + 1} needs a name of letters, digits, _ or - (got {name!r})")
    where = f"{path}: stage {name!r}"
    if name in earlier:
        raise ConfigError(f"{where}: the name is used twice")
    if name == "dir":
        raise ConfigError(f"{where}: 'dir' is reserved (${{dir}} is a stage's own directory)")
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind={kind!r} is not allowed (allowed: {', '.join(KINDS)})")
    needs = table.get("needs", [])
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise ConfigError(f"{where}: needs must be a list of stage names")
    body = {k: v for k, v in table.items() if k not in ("name", "kind", "needs")}
    deps = list(dict.fromkeys([*needs, *sorted(references(body))]))
    for dep in deps:
        if dep not in earlier:
            later = "a later stage" if dep != name else "itself"
            known = ", ".join(earlier) or "none"
            raise ConfigError(
                f"{where}: needs {dep!r}, which is not an earlier stage"
                + (f" ({later})" if dep == name else f" (earlier stages: {known})")
            )
    try:
        options = structure(KINDS[kind], body, where="")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return Stage(name=name, kind=kind, options=options, raw=dict(table), needs=deps)
