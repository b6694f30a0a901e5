"""Running an experiment: stages in order, each cached by the hash of its inputs.

A stage's hash covers its kind, its table in the experiment file, the content of the config file
it names (for ``command``/``search`` stages: of every argument that names a file), and the hashes
of the stages it depends on, so a change anywhere upstream re-runs it.
``<out>/<stage>/stage.json`` records the hash, the state (``completed`` / ``failed``), the outputs
and the time. A re-run skips a completed stage with the same hash; a failed one runs again in
the same directory (a train stage then resumes its runs from ``last.pt``); a stage whose hash
changed starts from an empty directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from mlcore.errors import ConfigError, MlcoreError, RunInterrupted
from mlcore.experiment.spec import REFERENCE, Experiment, Stage, load_experiment
from mlcore.io import atomic_write_json, read_json, to_jsonable

log = logging.getLogger(__name__)

RECORD = "stage.json"

State = Literal["completed", "cached", "failed", "stale", "pending", "skipped"]


@attrs.define
class StageResult:
    """One stage after :func:`run_experiment` (or as :func:`experiment_status` sees it).

    ``state``: ``completed`` (ran now), ``cached`` (skipped: done with the same inputs), ``failed``,
    ``stale`` (done, but its inputs changed), ``pending`` (never ran) or ``skipped`` (not reached).
    """

    name: str
    kind: str
    state: State
    hash: str
    dir: Path
    seconds: float = 0.0
    outputs: dict[str, Any] = attrs.field(factory=dict)
    error: str = ""


@attrs.define
class ExperimentResult:
    """What :func:`run_experiment` returns: the experiment's directory and one result per stage."""

    out_dir: Path
    stages: list[StageResult]

    @property
    def ok(self) -> bool:
        """Whether every stage is completed or cached."""
        return all(s.state in ("completed", "cached") for s in self.stages)

    def outputs(self, name: str) -> dict[str, Any]:
        """The outputs of stage ``name``."""
        for s in self.stages:
            if s.name == name:
                return s.outputs
        raise KeyError(name)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stage_hash(exp: Experiment, stage: Stage, upstream: dict[str, str]) -> str:
    """The hash of everything a stage's result depends on (see the module docstring)."""
    inputs: dict[str, Any] = {"kind": stage.kind, "table": stage.raw, "needs": {d: upstream[d] for d in stage.needs}}
    config = stage.raw.get("config")
    if isinstance(config, str) and not REFERENCE.search(config):
        path = resolve_path(exp, config)
        if not path.is_file():
            raise ConfigError(f"{exp.path}: stage {stage.name!r}: config file not found: {path}")
        inputs["config_file"] = file_digest(path)
    if stage.kind in ("command", "search"):  # `--config search.toml`: the file's content is an input too
        files = _argument_files(exp, stage.raw.get("args"))
        if files:
            inputs["argument_files"] = files
    text = json.dumps(to_jsonable(inputs), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _argument_files(exp: Experiment, args: Any) -> dict[str, str]:
    """``{argument: SHA-256}`` of the command arguments (``PATH`` or ``--opt=PATH``) that name a file.

    Paths are relative to the experiment file's folder, where the command runs.
    """
    found: dict[str, str] = {}
    for arg in args if isinstance(args, list) else []:
        if not isinstance(arg, str) or REFERENCE.search(arg):
            continue
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if not value or value.startswith("-"):
            continue
        path = resolve_path(exp, value)
        with contextlib.suppress(OSError):
            if path.is_file():
                found[arg] = file_digest(path)
    return found


def resolve_path(exp: Experiment, value: str) -> Path:
    """A path of the experiment file, relative to the file's folder."""
    p = Path(value)
    return p if p.is_absolute() else exp.path.parent / p


def substitute(value: Any, outputs: dict[str, dict[str, Any]], own_dir: Path, where: str) -> Any:
    """Replace ``${stage.key}`` and ``${dir}`` in every string of ``value``.

    A string that is exactly one reference takes the output's value as it is (a list stays a list).
    """
    if isinstance(value, dict):
        return {k: substitute(v, outputs, own_dir, where) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, outputs, own_dir, where) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(match: Any) -> Any:
        name, keys = match.group(1), [k for k in match.group(2).split(".") if k]
        if name == "dir":
            if keys:
                raise ConfigError(f"{where}: ${{dir}} takes no keys")
            return str(own_dir)
        item: Any = outputs[name]
        for i, key in enumerate(keys):
            if isinstance(item, list) and key.isdigit() and int(key) < len(item):
                item = item[int(key)]
            elif isinstance(item, dict) and key in item:
                item = item[key]
            else:
                done = ".".join([name, *keys[:i]])
                have = ", ".join(item) if isinstance(item, dict) else type(item).__name__
                raise ConfigError(f"{where}: ${{{match.group(1)}{match.group(2)}}}: {done} has no {key!r} ({have})")
        return item

    whole = REFERENCE.fullmatch(value)
    if whole:
        return lookup(whole)
    return REFERENCE.sub(lambda m: str(lookup(m)), value)


def _read_record(stage_dir: Path) -> dict[str, Any]:
    try:
        data = read_json(stage_dir / RECORD)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_experiment(
    path: str | Path, *, force: Sequence[str] = (), until: str | None = None, progress: bool = False
) -> ExperimentResult:
    """Run the stages of an experiment file in order (``mlcore pipeline run FILE``).

    ``force``: stage names to run even when cached (the stages depending on them re-run too).
    ``until``: stop after this stage. A failing stage is recorded as failed and its error
    re-raised; the stages after it are not run. A stage stopped by Ctrl-C/SIGTERM raises
    :class:`~mlcore.errors.RunInterrupted` (exit code 130) naming the command that continues.
    The experiment's directory is locked while it runs: a second run of it is refused in one line.
    """
    exp = load_experiment(path)
    names = [s.name for s in exp.stages]
    for name in [*force, *([until] if until else [])]:
        if name not in names:
            raise ConfigError(f"{exp.path}: no stage {name!r} (stages: {', '.join(names)})")
    exp.out_dir.mkdir(parents=True, exist_ok=True)
    with _experiment_lock(exp):
        return _run_stages(exp, force=force, until=until, progress=progress)


@contextlib.contextmanager
def _experiment_lock(exp: Experiment) -> Iterator[None]:
    """Hold the lock of the experiment's directory: one ``mlcore pipeline run`` of it at a time."""
    from mlcore.runs import RunLock, RunLockedError

    lock = RunLock(exp.out_dir)
    try:
        lock.acquire()
    except RunLockedError:
        raise RunLockedError(
            f"{exp.path}: another `mlcore pipeline run` (pid {lock._holder()}) is running this experiment "
            f"in {exp.out_dir}; wait for it to finish"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _run_stages(exp: Experiment, *, force: Sequence[str], until: str | None, progress: bool) -> ExperimentResult:
    """:func:`run_experiment` once the experiment's directory is locked."""
    from mlcore.experiment.stages import run_stage

    hashes: dict[str, str] = {}
    outputs: dict[str, dict[str, Any]] = {}
    results: list[StageResult] = []
    forced: set[str] = set(force)
    for stage in exp.stages:
        if until in [r.name for r in results]:
            results.append(StageResult(stage.name, stage.kind, "skipped", "", exp.out_dir / stage.name))
            continue
        h = stage_hash(exp, stage, hashes)
        if forced.intersection(stage.needs):
            forced.add(stage.name)
        hashes[stage.name] = h
        stage_dir = exp.out_dir / stage.name
        record = _read_record(stage_dir)
        if record.get("hash") == h and record.get("state") == "completed" and stage.name not in forced:
            log.info("stage %s: cached (inputs unchanged, %s)", stage.name, h)
            outputs[stage.name] = record.get("outputs") or {}
            results.append(
                StageResult(
                    stage.name, stage.kind, "cached", h, stage_dir, record.get("seconds", 0.0), outputs[stage.name]
                )
            )
            continue
        if record and (record.get("hash") != h or stage.name in forced) and stage_dir.exists():
            log.info(
                "stage %s: %s, starting it afresh", stage.name, "forced" if stage.name in forced else "inputs changed"
            )
            shutil.rmtree(stage_dir)
        elif record.get("state") == "failed":
            log.info("stage %s: failed before; running it again in %s", stage.name, stage_dir)
        stage_dir.mkdir(parents=True, exist_ok=True)
        where = f"{exp.path}: stage {stage.name!r}"
        log.info("stage %s (%s): running -> %s", stage.name, stage.kind, stage_dir)
        start = time.perf_counter()
        try:
            table = substitute(
                {k: v for k, v in stage.raw.items() if k not in ("name", "kind", "needs")}, outputs, stage_dir, where
            )
            out = run_stage(exp, stage, table, stage_dir, outputs, progress=progress)
        except BaseException as exc:
            seconds = time.perf_counter() - start
            message = str(exc) or type(exc).__name__
            atomic_write_json(
                stage_dir / RECORD,
                {
                    "name": stage.name,
                    "kind": stage.kind,
                    "hash": h,
                    "state": "failed",
                    "seconds": seconds,
                    "error": message,
                },
            )
            log.error("stage %s failed after %.1f s: %s", stage.name, seconds, message)
            results.append(StageResult(stage.name, stage.kind, "failed", h, stage_dir, seconds, error=message))
            if isinstance(exc, RunInterrupted):  # not a failure to fix: the same command continues
                raise RunInterrupted(
                    f"{where} interrupted by {exc.signal_name}; the last checkpoint is kept, "
                    f"continue with `mlcore pipeline run {exp.path}` (finished stages are kept)",
                    run_dir=exc.run_dir,
                    signal_name=exc.signal_name,
                ) from exc
            if isinstance(exc, MlcoreError) and not isinstance(exc, ConfigError):
                raise MlcoreError(
                    f"{where} failed: {message} (fix it and run again: finished stages are kept)"
                ) from exc
            raise
        seconds = time.perf_counter() - start
        out = {"dir": str(stage_dir), **to_jsonable(out)}
        outputs[stage.name] = out
        atomic_write_json(
            stage_dir / RECORD,
            {
                "name": stage.name,
                "kind": stage.kind,
                "hash": h,
                "state": "completed",
                "seconds": seconds,
                "outputs": out,
            },
        )
        log.info("stage %s: done in %.1f s", stage.name, seconds)
        results.append(StageResult(stage.name, stage.kind, "completed", h, stage_dir, seconds, out))
    return ExperimentResult(out_dir=exp.out_dir, stages=results)


def experiment_status(path: str | Path) -> ExperimentResult:
    """Each stage's state without running anything (``mlcore pipeline status FILE``)."""
    exp = load_experiment(path)
    hashes: dict[str, str] = {}
    results: list[StageResult] = []
    for stage in exp.stages:
        h = stage_hash(exp, stage, hashes)
        stage_dir = exp.out_dir / stage.name
        record = _read_record(stage_dir)
        if record.get("hash") == h:
            hashes[stage.name] = h
            recorded = record.get("state")
            state: State = "completed" if recorded == "completed" else "failed" if recorded == "failed" else "pending"
        else:
            hashes[stage.name] = h
            state = "stale" if record.get("state") == "completed" else "pending"
        results.append(
            StageResult(
                stage.name,
                stage.kind,
                state,
                h,
                stage_dir,
                float(record.get("seconds", 0.0)) if state != "pending" else 0.0,
                record.get("outputs") or {} if state == "completed" else {},
                record.get("error", "") if state == "failed" else "",
            )
        )
    return ExperimentResult(out_dir=exp.out_dir, stages=results)
