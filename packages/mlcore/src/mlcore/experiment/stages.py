"""What each stage kind does: a call of the public API (:mod:`mlcore.api`) or of an ``mlcore`` command."""

from __future__ import annotations

import inspect
import logging
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcore.config import structure
from mlcore.errors import ConfigError, MlcoreError, RunInterrupted
from mlcore.experiment.spec import (
    KINDS,
    RUN_KINDS,
    ApiStage,
    CommandStage,
    DataStage,
    EvaluateStage,
    Experiment,
    ReportStage,
    Stage,
    TrainStage,
)
from mlcore.io import atomic_write_json, atomic_write_text, read_json, to_jsonable

log = logging.getLogger(__name__)

Outputs = dict[str, dict[str, Any]]

#: Seconds a command stage's process gets to stop (write its checkpoint) after SIGTERM before it is killed.
STOP_TIMEOUT = 120.0


def run_stage(
    exp: Experiment, stage: Stage, table: dict[str, Any], stage_dir: Path, outputs: Outputs, *, progress: bool = False
) -> dict[str, Any]:
    """Run one stage with its (substituted) table; returns its outputs."""
    try:
        options = structure(KINDS[stage.kind], table, where="")
    except ConfigError as exc:
        raise ConfigError(f"{exp.path}: stage {stage.name!r}: {exc}") from None
    runner: Callable[..., dict[str, Any]] = _RUNNERS[stage.kind]
    return runner(exp, stage, options, stage_dir, outputs, progress)


def _data(exp: Experiment, stage: Stage, opts: DataStage, stage_dir: Path, outputs: Outputs, progress: bool) -> Any:
    from mlcore import api

    files = api.generate_data(opts.dataset, stage_dir, num_samples=opts.num_samples, seed=opts.seed, overrides=opts.set)
    return {"files": [str(f) for f in files], "file": str(files[0]) if files else ""}


def _train(exp: Experiment, stage: Stage, opts: TrainStage, stage_dir: Path, outputs: Outputs, progress: bool) -> Any:
    from mlcore import api

    pipeline, profile = opts.pipeline, opts.profile
    if opts.plugin == "mlcore":
        pipeline, profile = pipeline or "train", profile or "default"
    config = None
    if opts.config is not None:
        config = Path(opts.config) if Path(opts.config).is_absolute() else exp.path.parent / opts.config
    runs = []
    for seed in opts.seeds:
        run_dir = stage_dir / f"seed-{seed}"
        if _summary(run_dir).get("status") == "completed":
            log.info("stage %s: seed %d already trained in %s", stage.name, seed, run_dir)
        else:
            api.run(
                opts.plugin,
                pipeline=pipeline,
                profile=profile,
                config=config,
                overrides=opts.set,
                out=run_dir,
                device=opts.device,
                seed=seed,
                threads=opts.threads or None,
                progress=progress,
            )
        runs.append(_run_record(run_dir, seed))
    ranked = rank_runs(runs)
    return {"runs": runs, "best_run": ranked[0]["dir"] if ranked else ""}


def _summary(run_dir: Path) -> dict[str, Any]:
    try:
        data = read_json(run_dir / "summary.json")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _run_record(run_dir: Path, seed: int) -> dict[str, Any]:
    """What selection needs to know about a finished run."""
    try:
        stats = read_json(run_dir / "training_stats.json")
    except (OSError, ValueError):
        stats = {}
    return {
        "dir": str(run_dir),
        "seed": seed,
        "monitor": stats.get("monitor"),
        "monitor_mode": stats.get("monitor_mode", "min"),
        "best_metric": stats.get("best_metric"),
        "metrics": _summary(run_dir).get("metrics", {}),
    }


def rank_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs from best to worst by their monitored value (runs without one last, in their order)."""
    import math

    def key(run: dict[str, Any]) -> tuple[int, float]:
        value = run.get("best_metric")
        if not isinstance(value, int | float) or not math.isfinite(value):
            return (1, 0.0)
        return (0, -float(value) if run.get("monitor_mode") == "max" else float(value))

    return sorted(runs, key=key)


def upstream_runs(exp: Experiment, stage: Stage, outputs: Outputs) -> list[dict[str, Any]]:
    """The runs of the train stages ``stage`` depends on (directly); a ConfigError when there are none."""
    runs = [
        run for dep in stage.needs if exp.stage(dep).kind in RUN_KINDS for run in outputs.get(dep, {}).get("runs", [])
    ]
    if not runs:
        raise ConfigError(
            f'{exp.path}: stage {stage.name!r} ({stage.kind}) needs a train stage: add needs = ["<train stage>"]'
        )
    return runs


def _evaluate(
    exp: Experiment, stage: Stage, opts: EvaluateStage, stage_dir: Path, outputs: Outputs, progress: bool
) -> Any:
    from mlcore import api
    from mlcore.experiment.selection import evaluate_ensemble

    ranked = rank_runs(upstream_runs(exp, stage, outputs))
    if opts.select == "ensemble":
        chosen = ranked[: opts.top] if opts.top else ranked
        checkpoints = [Path(r["dir"]) / "checkpoints" / "best.pt" for r in chosen]
        metrics = evaluate_ensemble(checkpoints, out_dir=stage_dir, device=opts.device, data_overrides=opts.set)
    else:
        name = "best.pt" if opts.select == "best" else "last.pt"
        checkpoints = [Path(ranked[0]["dir"]) / "checkpoints" / name]
        metrics = api.evaluate(checkpoints[0], out_dir=stage_dir, device=opts.device, data_overrides=opts.set)
    log.info("stage %s: %s of %d run(s): %s", stage.name, opts.select, len(ranked), metrics)
    return {"metrics": metrics, "checkpoints": [str(c) for c in checkpoints], "select": opts.select}


def _compare(exp: Experiment, stage: Stage, opts: Any, stage_dir: Path, outputs: Outputs, progress: bool) -> Any:
    from mlcore import api
    from mlcore.comparison import format_table

    runs = upstream_runs(exp, stage, outputs)
    rows = api.compare([r["dir"] for r in runs])
    atomic_write_json(stage_dir / "comparison.json", rows)
    atomic_write_text(stage_dir / "comparison.md", format_table(rows) + "\n")
    return {"rows": rows}


def _report(exp: Experiment, stage: Stage, opts: ReportStage, stage_dir: Path, outputs: Outputs, progress: bool) -> Any:
    from mlcore.comparison import format_table
    from mlcore.report import write_report

    lines = ["| stage | kind | seconds | directory |", "|---|---|---|---|"]
    metrics: dict[str, Any] = {}
    sections: list[tuple[str, str]] = []
    for other in exp.stages:
        if other.name == stage.name:
            break
        record = _record(stage_dir.parent / other.name)
        seconds = record.get("seconds")
        shown = f"{seconds:.1f}" if isinstance(seconds, int | float) else ""
        lines.append(f"| {other.name} | {other.kind} | {shown} | {other.name}/ |")
        out = outputs.get(other.name, {})
        if other.kind == "evaluate":
            metrics = {f"{other.name}.{k}": v for k, v in out.get("metrics", {}).items()} | metrics
        if other.kind == "compare" and out.get("rows"):
            sections.append((f"Comparison ({other.name})", format_table(out["rows"])))
        if other.kind in RUN_KINDS and out.get("best_run"):
            best = Path(out["best_run"])
            rel = best.relative_to(stage_dir.parent) if best.is_relative_to(stage_dir.parent) else best
            sections.append((f"Best run of {other.name}", f"`{rel}` (of {len(out.get('runs', []))})"))
    sections.insert(0, ("Stages", "\n".join(lines)))
    path = write_report(stage_dir, title=opts.title or f"Experiment {exp.name}", metrics=metrics, sections=sections)
    return {"report": str(path), "metrics": metrics}


def _record(stage_dir: Path) -> dict[str, Any]:
    try:
        data = read_json(stage_dir / "stage.json")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _command(
    exp: Experiment, stage: Stage, opts: CommandStage, stage_dir: Path, outputs: Outputs, progress: bool
) -> Any:
    import subprocess
    import sys

    from mlcore.api import _SignalAsInterrupt

    args = ["tune", *opts.args] if stage.kind == "search" else list(opts.args)
    if not args:
        raise ConfigError(f"{exp.path}: stage {stage.name!r}: args is empty (the mlcore command to run)")
    log.info("stage %s: mlcore %s", stage.name, shlex.join(args))
    # a process of its own: a command may start workers or change process-wide state (threads, logging)
    child = subprocess.Popen([sys.executable, "-m", "mlcore", *args], cwd=exp.path.parent)
    signals = _SignalAsInterrupt()
    try:
        with signals:
            code = child.wait()
    except KeyboardInterrupt:
        # stop the command the way it would stop by itself (it checkpoints), and never leave it behind;
        # Ctrl-C in a terminal reached it already, a SIGTERM sent to this process alone did not
        if signals.received == "SIGTERM" and child.poll() is None:
            child.terminate()
        try:
            child.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise RunInterrupted(
            f"`mlcore {shlex.join(args)}` stopped by {signals.received or 'SIGINT'}",
            signal_name=signals.received or "SIGINT",
        ) from None
    if code == 130:
        raise RunInterrupted(f"`mlcore {shlex.join(args)}` was interrupted (exit status 130)")
    if code != 0:
        raise MlcoreError(f"`mlcore {shlex.join(args)}` exited with status {code}")
    return {"command": ["mlcore", *args]}


def _api(exp: Experiment, stage: Stage, opts: ApiStage, stage_dir: Path, outputs: Outputs, progress: bool) -> Any:
    from mlcore import api

    func = getattr(api, opts.function, None) if not opts.function.startswith("_") else None
    if not callable(func) or not inspect.isfunction(func) or func.__module__ != api.__name__:
        public = sorted(
            n for n, f in vars(api).items() if inspect.isfunction(f) and f.__module__ == api.__name__ and n[0] != "_"
        )
        raise ConfigError(
            f"{exp.path}: stage {stage.name!r}: mlcore.api has no function {opts.function!r} "
            f"(available: {', '.join(public)})"
        )
    kwargs = dict(opts.args)
    params = inspect.signature(func).parameters
    for key in ("out", "out_dir"):
        if key in params and key not in kwargs:
            kwargs[key] = str(stage_dir)
            break
    try:
        value = func(**kwargs)
    except TypeError as exc:
        if "argument" in str(exc):
            raise ConfigError(f"{exp.path}: stage {stage.name!r}: {opts.function}(): {exc}") from None
        raise
    value = to_jsonable(value)
    return {**value, "value": value} if isinstance(value, dict) else {"value": value}


_RUNNERS: dict[str, Callable[..., Any]] = {
    "data": _data,
    "train": _train,
    "evaluate": _evaluate,
    "compare": _compare,
    "report": _report,
    "command": _command,
    "search": _command,
    "api": _api,
}
