"""The public Python API; every CLI command is a thin wrapper over a function here.

==========================  ==========================================
CLI                         Python
==========================  ==========================================
``mlcore run --plugin P``   :func:`run`
``mlcore train --config``   :func:`train`
``mlcore evaluate``         :func:`evaluate`
``mlcore export``           :func:`export`
``mlcore data generate``    :func:`generate_data`
``mlcore compare``          :func:`compare`
``mlcore tune``             :func:`tune`
``mlcore show KIND NAME``   :func:`build` / ``get_registry().get(kind, name)``
``mlcore pipeline run F``   :func:`run_experiment` (:mod:`mlcore.experiment`)
``mlcore pipeline status``  :func:`experiment_status` (:mod:`mlcore.experiment`)
``mlcore run-many``         :func:`mlcore.parallel.run_jobs` (jobs from ``vary_jobs`` / ``load_jobs``)
``mlcore run --nproc N``    ``torchrun --nproc_per_node=N -m mlcore run ...`` (:func:`run` in each rank)
``mlcore doctor``           :func:`mlcore.doctor.diagnose`
``mlcore find-batch-size``  :func:`mlcore.training.batch_size.find_run_batch_size`
==========================  ==========================================
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import attrs

from mlcore.config import (
    apply_overrides,
    flatten,
    in_range,
    layer_configs,
    load_file,
    parse_override,
    rename_old_tables,
    structure,
    unstructure,
)
from mlcore.errors import CheckpointError, ConfigError, MlcoreError
from mlcore.registry import get_registry

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "quick"


@attrs.define
class RunSettings:
    """The ``[run]`` table of a run's ``config.toml``: what ran, with which seed and device.

    ``threads``: torch intra-op threads (``--threads``); 0 = :func:`mlcore.runs.default_threads`,
    the idle CPUs available to this process (its share under DDP), at most 8.
    """

    plugin: str = ""
    pipeline: str = ""
    profile: str = DEFAULT_PROFILE
    seed: int = 0
    device: str = "auto"
    threads: int = attrs.field(default=0, validator=in_range(0, 4096))


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@attrs.frozen
class RunOptions:
    """What names a run, as ``mlcore run`` takes it: the arguments :func:`run` and :func:`resolve` share.

    ``None`` means "not given" (the config file's ``[run]`` value, else the default).
    :meth:`resolve` and :meth:`run` call the functions with these values; :meth:`cli_args` gives
    the same options as ``mlcore run`` flags (how ``--nproc`` re-launches a run under torchrun).
    """

    plugin: str | None = None
    pipeline: str | None = None
    profile: str | None = None
    config: str | Path | Mapping[str, Any] | None = None
    overrides: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    out: str | Path | None = None
    device: str | None = None
    seed: int | None = None
    threads: int | None = None

    def resolve(self) -> ResolvedRun:
        """:func:`resolve` with these options (``out`` plays no part)."""
        return resolve(
            self.plugin,
            pipeline=self.pipeline,
            profile=self.profile,
            config=self.config,
            overrides=self.overrides,
            seed=self.seed,
            device=self.device,
            threads=self.threads,
        )

    def run(self, *, resume: str | Path | None = None, progress: bool = True) -> RunResult:
        """:func:`run` with these options."""
        return run(
            self.plugin,
            pipeline=self.pipeline,
            profile=self.profile,
            config=self.config,
            overrides=self.overrides,
            out=self.out,
            device=self.device,
            seed=self.seed,
            threads=self.threads,
            resume=resume,
            progress=progress,
        )

    def cli_args(self) -> list[str]:
        """The options as ``mlcore run`` flags: ``["--plugin", "trc-control", "--set", "k=v", ...]``."""
        if isinstance(self.config, Mapping):
            raise ConfigError("a config given as a mapping has no command-line form; write it to a file")
        args: list[str] = []
        for flag, value in (
            ("--plugin", self.plugin),
            ("--pipeline", self.pipeline),
            ("--profile", self.profile),
            ("--config", self.config),
            ("--out", self.out),
            ("--device", self.device),
            ("--seed", self.seed),
            ("--threads", self.threads),
        ):
            if value is not None:
                args += [flag, str(value)]
        for item in self.overrides:
            args += ["--set", item]
        return args


@attrs.define
class ResolvedRun:
    """A fully resolved run: the pipeline spec, its structured config and the ``[run]`` settings."""

    settings: RunSettings
    spec: Any
    config: Any

    def to_document(self) -> dict[str, Any]:
        """The ``config.toml`` document: ``[run]`` plus the pipeline config's tables."""
        return {"run": unstructure(self.settings), **(unstructure(self.config) or {})}


@attrs.define
class RunResult:
    """What :func:`run` returns: where the run lives and its headline metrics."""

    out_dir: Path
    metrics: dict[str, Any]
    seconds: float
    settings: RunSettings


def build(kind: str, name: Any, config: Any = None, /, **kwargs: Any) -> Any:
    """Build a registered component: ``build("model", "trc", {"size": "small"})``.

    ``name`` may also be a pipeline config's component table: ``build("loss", cfg.loss)``.

    ``config`` may be ``None`` (defaults), a mapping (validated strictly) or a config instance.
    """
    from mlcore.pipelines.sections import ComponentConfig

    if isinstance(name, ComponentConfig):  # a component table of a pipeline config: build("loss", cfg.loss)
        name, config = name.name, name.config if config is None else config
    spec = get_registry().get(kind, name)
    if config is None or isinstance(config, Mapping):
        config = spec.make_config(dict(config or {}), where=f"{kind}.")
    return spec.build(config, **kwargs)


def _pipeline_spec(plugin: str | None, pipeline: str | None) -> Any:
    """The pipeline spec ``mlcore run`` uses: ``pipeline`` of ``plugin`` (its first when ``None``).

    Pipelines are scoped by plugin. ``pipeline`` may be written ``plugin:name``; without a plugin,
    a bare name resolves when exactly one plugin registers it.
    """
    reg = get_registry()
    if pipeline is not None and ":" in pipeline:
        prefix, _, bare = pipeline.rpartition(":")
        if plugin is not None and prefix != plugin:
            raise ConfigError(f"--pipeline {pipeline}: names plugin {prefix!r}, but --plugin is {plugin!r}")
        plugin, pipeline = prefix, bare
    if plugin is None:
        if pipeline is None:
            raise ConfigError(
                "no plugin given: pass --plugin NAME or set run.plugin in the config (see `mlcore plugins`)"
            )
        try:
            return reg.get("pipeline", pipeline)
        except MlcoreError as exc:
            raise ConfigError(f"--pipeline {pipeline}: {exc}") from None
    pipelines = reg.pipelines(plugin)
    if not pipelines:
        raise ConfigError(f"plugin {plugin!r} registers no pipeline (see `mlcore list pipeline`)")
    if pipeline is None:
        return pipelines[0]
    for spec in pipelines:
        if spec.name == pipeline:
            return spec
    names = ", ".join(s.name for s in pipelines)
    raise ConfigError(f"plugin {plugin!r} has no pipeline {pipeline!r} (available: {names})")


def resolve(
    plugin: str | None = None,
    *,
    pipeline: str | None = None,
    profile: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> ResolvedRun:
    """Resolve a run's config: defaults < profile < config file < ``overrides``; explicit args win for ``[run]``."""
    doc: dict[str, Any] = {}
    source = ""
    if isinstance(config, Mapping):
        doc = dict(config)
    elif config is not None:
        doc = load_file(config)
        source = f"{config}: "
    run_only: list[str] = []  # the [run] table is needed first; the other overrides layer in below
    rest: list[str] = []
    for item in overrides:
        path = parse_override(item)[0]
        (run_only if len(path) > 1 and path[0] == "run" else rest).append(item)
    doc = apply_overrides(doc, run_only)
    run_table = doc.pop("run", {}) or {}
    if not isinstance(run_table, Mapping):
        raise ConfigError(f"{source}[run] must be a table")
    try:
        settings = structure(RunSettings, run_table, where="run.")
    except ConfigError as exc:
        raise ConfigError(f"{source}{exc}") from None
    if plugin is not None:
        if settings.plugin and settings.plugin != plugin and config is not None:
            log.warning("--plugin %s overrides run.plugin=%s from the config file", plugin, settings.plugin)
        settings.plugin = plugin
    spec = _pipeline_spec(settings.plugin or None, pipeline or settings.pipeline or None)
    settings.plugin, settings.pipeline = spec.plugin, spec.name
    if profile is not None:
        settings.profile = profile
    if settings.profile not in spec.profiles and settings.profile != "default":
        if spec.profiles:
            allowed = ", ".join([*spec.profiles, "default"])
            raise ConfigError(
                f"profile={settings.profile!r} is not allowed for pipeline {spec.name!r} (allowed: {allowed})"
            )
        settings.profile = "default"
    if seed is not None:
        settings.seed = seed
    if device is not None:
        settings.device = device
    if threads is not None:
        if threads < 0:
            raise ConfigError(f"--threads {threads}: must be 0 (automatic) or a positive count")
        settings.threads = threads
    cls = spec.config_class()
    merged = layer_configs(cls, spec.profiles.get(settings.profile, {}), doc, rest)
    try:
        cfg = structure(cls, merged) if cls is not None else None
    except ConfigError as exc:
        raise ConfigError(f"{source}{exc}") from None
    return ResolvedRun(settings=settings, spec=spec, config=cfg)


#: Config keys that may change when a run is continued in its directory: ``<...>.trainer.epochs``
#: (more epochs extend a finished run), plus any config field declared with
#: ``attrs.field(..., metadata={"mlcore_extendable": True})`` (e.g. an RL trainer's step budget).
#: Anything else must match the saved ``config.toml``.
EXTENDABLE_KEYS = (("trainer", "epochs"),)
EXTENDABLE_METADATA = "mlcore_extendable"
#: ``[run]`` keys that do not define a run (execution settings), ignored when comparing configs.
EXECUTION_KEYS = (("run", "threads"),)
#: Fields that say how a run executes, not what it computes, in whatever table they appear: they
#: may change when a run is resumed (e.g. on a machine with fewer CPUs for data-loader workers).
EXECUTION_FIELDS = frozenset({"num_workers", "progress"})


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``[(dotted key, old, new)]`` where two config documents differ (execution settings ignored)."""
    a, b = flatten(unstructure(old)), flatten(unstructure(new))
    missing = object()
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in EXECUTION_KEYS or key[-1] in EXECUTION_FIELDS:
            continue
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            diffs.append((".".join(key), None if va is missing else va, None if vb is missing else vb))
    return diffs


def _extendable_fields(config: Any, where: str = "") -> set[str]:
    """Dotted keys of the config fields marked ``mlcore_extendable`` (component tables flattened)."""
    from mlcore.config import ComponentConfig

    if isinstance(config, ComponentConfig):
        return _extendable_fields(config.config, where)
    if not attrs.has(type(config)):
        return set()
    found: set[str] = set()
    for field in attrs.fields(type(config)):
        key = f"{where}{field.name}"
        if field.metadata.get(EXTENDABLE_METADATA):
            found.add(key)
        found |= _extendable_fields(getattr(config, field.name), f"{key}.")
    return found


def _extendable(key: str, marked: set[str]) -> bool:
    parts = tuple(key.split("."))
    return key in marked or any(parts[-len(k) :] == k for k in EXTENDABLE_KEYS)


def _has_trained(out_dir: Path) -> bool:
    """Whether a run directory holds results: a checkpoint, or the summary of a run that finished."""
    from mlcore.io import read_json
    from mlcore.runs import checkpoint_files

    if checkpoint_files(out_dir):
        return True
    return (out_dir / "summary.json").exists() and _read_summary(out_dir, read_json).get("status") != "interrupted"


def _as_current_document(document: Mapping[str, Any], config_class: type) -> dict[str, Any]:
    """A saved ``config.toml`` document as today's code writes it: old table names renamed, and the
    pipeline tables structured and unstructured again (so ``loss = "mse"`` equals ``[loss] name = "mse"``).
    A table today's config class no longer accepts is kept as written, and shows up as a difference."""
    run_table = document.get("run", {})
    tables = rename_old_tables(config_class, {k: v for k, v in document.items() if k != "run"}, warn=False)
    with contextlib.suppress(ConfigError):
        tables = unstructure(structure(config_class, tables)) or {}
    return {"run": run_table, **tables}


def _check_reuse(out_dir: Path, resolved: ResolvedRun) -> bool:
    """Decide whether ``resolved`` may run in ``out_dir``; returns True when it continues a run there.

    Same config: resume. Only extendable keys differ (``trainer.epochs``): extend from the last
    checkpoint. A directory where nothing was trained is re-used with any config. Otherwise refused.
    """
    config_path = out_dir / "config.toml"
    if not config_path.exists():
        return False
    if not _has_trained(out_dir):
        log.info("re-using %s: it holds a config.toml but nothing trained", out_dir)
        return False
    try:
        previous = _as_current_document(load_file(config_path), type(resolved.config))
    except ConfigError as exc:
        raise ConfigError(f"{out_dir} holds an unreadable config.toml ({exc}); pick another --out") from None
    diffs = config_differences(previous, resolved.to_document())
    if not diffs:
        log.info("resuming the run in %s", out_dir)
        return True
    marked = _extendable_fields(resolved.config)
    fixed = [d for d in diffs if not _extendable(d[0], marked)]
    if fixed:
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in fixed[:3])
        more = f" (+{len(fixed) - 3} more)" if len(fixed) > 3 else ""
        raise ConfigError(
            f"{out_dir} already holds a run with a different config ({shown}{more}); pick another --out, "
            f"or continue it with `mlcore run --resume {out_dir}` (only trainer.epochs may change with --set)"
        )
    for key, a, b in diffs:
        log.info("extending the run in %s: %s %r -> %r", out_dir, key, a, b)
    return True


def _preflight(config: Any, where: str = "") -> None:
    """Check names the config refers to but only the trainer would build (trackers, callbacks)."""
    from mlcore.config import ComponentConfig
    from mlcore.registry import get_registry

    if isinstance(config, ComponentConfig):
        _preflight(config.config, where)
        return
    if not attrs.has(type(config)):
        return
    for field in attrs.fields(type(config)):
        value = getattr(config, field.name)
        key = f"{where}{field.name}"
        if field.name in ("trackers", "callbacks") and isinstance(value, list):
            kind = field.name[:-1]
            for name in value:
                try:
                    get_registry().get(kind, name)
                except MlcoreError as exc:
                    raise ConfigError(f"{key}: {exc}") from None
        else:
            _preflight(value, f"{key}.")


class _SignalAsInterrupt:
    """While active (main thread only), SIGTERM raises KeyboardInterrupt like Ctrl-C does.

    Pipelines (and the trainer) then stop the same way for both; ``received`` names the signal.
    A handler someone else installed is left alone.
    """

    def __init__(self) -> None:
        self.received = "SIGINT"
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        self.received = signal.Signals(signum).name
        raise KeyboardInterrupt

    def __enter__(self) -> _SignalAsInterrupt:
        import signal
        import threading

        main = threading.current_thread() is threading.main_thread()
        if main and hasattr(signal, "SIGTERM") and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def resume_command(run_dir: str | Path) -> str:
    """The command that continues the run in ``run_dir``: ``mlcore run --resume <run_dir>``."""
    import shlex

    return f"mlcore run --resume {shlex.quote(str(run_dir))}"


def run(
    plugin: str | None = None,
    *,
    pipeline: str | None = None,
    profile: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    device: str | None = None,
    seed: int | None = None,
    threads: int | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
) -> RunResult:
    """Run a plugin's pipeline end to end (``mlcore run``); returns the run directory and metrics.

    ``resume=<run dir>`` (``mlcore run --resume``) continues a run with its saved ``config.toml``;
    ``overrides`` may raise ``trainer.epochs`` to extend a finished run. Re-running into an existing
    ``out`` with the same config resumes it too; a different config there is refused.

    The run directory is locked for the whole run (a second run into it is refused naming the
    holder's pid); stale temporary files of killed writes are removed; the pipeline's
    :meth:`~mlcore.pipelines.Pipeline.check` runs before anything is written. On Ctrl-C/SIGTERM,
    ``summary.json`` records ``"status": "interrupted"`` and :class:`~mlcore.errors.RunInterrupted`
    is raised with the resume command.
    """
    from mlcore.runs import RunLock, default_run_dir, prepare_run_dir

    if resume is not None:
        if config is not None or out is not None:
            raise ConfigError("--resume DIR already fixes the config and output; drop --config/--out")
        config, out = Path(resume) / "config.toml", Path(resume)
        if not config.is_file():
            raise ConfigError(f"{resume}: not a run directory (no config.toml)")
    resolved = resolve(
        plugin,
        pipeline=pipeline,
        profile=profile,
        config=config,
        overrides=overrides,
        seed=seed,
        device=device,
        threads=threads,
    )
    settings = resolved.settings
    out_dir, created = prepare_run_dir(out if out is not None else default_run_dir(settings.plugin, settings.pipeline))
    lock = RunLock(out_dir)
    main = _is_main_rank()
    try:
        if main:
            lock.acquire()
        try:
            return _run_locked(resolved, out_dir, progress, main=main)
        finally:
            if main and created and not (out_dir / "config.toml").exists():  # a failed start leaves nothing behind
                lock.path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    out_dir.rmdir()
            lock.release()
    except OSError as exc:
        user_error = _os_error(exc, out_dir)
        if user_error is None:
            raise
        raise user_error from None


#: OS errors that are the user's environment, not a bug: reported as one line naming the path.
_USER_OS_ERRORS = {"ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG", "ENAMETOOLONG", "ENOTDIR", "EISDIR"}


def _os_error(exc: OSError, out_dir: Path) -> MlcoreError | None:
    """A one-line error for an OS error caused by the environment (full disk, permissions), else None."""
    import errno

    from mlcore.runs import describe_os_error

    if errno.errorcode.get(exc.errno or 0) not in _USER_OS_ERRORS:
        return None
    if exc.filename and Path(exc.filename) != out_dir:
        return MlcoreError(f"{exc.filename}: {describe_os_error(exc)} (run directory {out_dir})")
    return MlcoreError(f"{out_dir}: {describe_os_error(exc)}")


def _is_main_rank() -> bool:
    """Whether this process writes the run files: not a rank > 0 of a ``torchrun`` launch (``--nproc``)."""
    import os

    try:
        return int(os.environ.get("WORLD_SIZE") or 1) <= 1 or int(os.environ.get("RANK") or 0) == 0
    except ValueError:
        return True


def _run_locked(resolved: ResolvedRun, out_dir: Path, progress: bool, *, main: bool = True) -> RunResult:
    """:func:`run` once the run directory is locked: pre-flight, write the run files, run, summarise.

    ``main=False`` (ranks > 0 of a distributed run): the same run without the lock, the stale-file
    clean-up and the run files (config, environment, log, summary), which rank 0 writes.
    """
    from mlcore.config import dumps_toml
    from mlcore.devices import resolve_device
    from mlcore.errors import RunInterrupted
    from mlcore.io import atomic_write_json, atomic_write_text, read_json, to_jsonable
    from mlcore.runs import RunContext, apply_threads, checkpoint_files, environment_record, remove_stale_tmp
    from mlcore.seeding import seed_everything

    settings = resolved.settings
    if main:
        remove_stale_tmp(out_dir)
    write_json: Any = atomic_write_json if main else _no_write  # ranks > 0: rank 0 writes the run files
    write_text: Any = atomic_write_text if main else _no_write
    continuing = _check_reuse(out_dir, resolved)
    threads = apply_threads(settings.threads or (_previous_threads(out_dir) if continuing else 0))
    torch_device = resolve_device(settings.device)
    info = get_registry().plugin(settings.plugin)
    ctx = RunContext(
        out_dir=out_dir,
        device=torch_device,
        seed=settings.seed,
        plugin=settings.plugin,
        pipeline=settings.pipeline,
        profile=settings.profile,
        config=resolved.config,
        meta={"plugin": settings.plugin, "plugin_version": info.version, "pipeline": settings.pipeline},
        progress=progress,
    )
    _preflight(resolved.config)
    seed_everything(settings.seed)
    pipe = resolved.spec.build(resolved.config)
    pipe.check(ctx)
    seed_everything(settings.seed)  # the run does not depend on what check() drew

    write_text(out_dir / "config.toml", dumps_toml(resolved.to_document()))
    handler = _attach_log_file(out_dir / "run.log") if main else logging.NullHandler()
    try:
        write_json(
            out_dir / "environment.json",
            environment_record(
                device=torch_device, seed=settings.seed, plugins=[settings.plugin, "mlcore"], threads=settings.threads
            ),
        )
        log.info(
            "running %s/%s (profile %s) on %s, seed %d, %d thread(s) -> %s",
            settings.plugin,
            settings.pipeline,
            settings.profile,
            torch_device,
            settings.seed,
            threads,
            out_dir,
        )
        summary: dict[str, Any] = {
            "plugin": settings.plugin,
            "pipeline": settings.pipeline,
            "profile": settings.profile,
            "seed": settings.seed,
            "device": str(torch_device),
        }
        checkpoints_before = checkpoint_files(out_dir)
        previous = _read_summary(out_dir, read_json)
        start = time.perf_counter()
        signals = _SignalAsInterrupt()
        try:
            with signals:
                metrics = pipe.run(ctx) or {}
        except (RunInterrupted, KeyboardInterrupt) as exc:
            name = getattr(exc, "signal_name", None) or signals.received
            seconds = time.perf_counter() - start
            write_json(
                out_dir / "summary.json",
                {**summary, "status": "interrupted", "signal": name, "seconds": seconds, "metrics": {}},
            )
            log.debug("interrupted by %s after %.1f s: %s", name, seconds, out_dir)  # the CLI prints it
            raise RunInterrupted(
                f"{out_dir}: interrupted by {name}; the last checkpoint is kept, "
                f"resume with `{resume_command(out_dir)}`",
                run_dir=str(out_dir),
                signal_name=name,
            ) from None
        seconds = time.perf_counter() - start
        noop = (
            continuing
            and bool(checkpoints_before)
            and checkpoint_files(out_dir) == checkpoints_before
            and previous.get("status", "completed") == "completed"
        )
        if noop:
            log.info("nothing left to train in %s: summary.json kept (%.1f s)", out_dir, previous.get("seconds", 0.0))
        else:
            summary.update(status="completed", seconds=seconds, metrics=metrics)
            write_json(out_dir / "summary.json", summary)
        if not (out_dir / "metrics.json").exists():
            write_json(out_dir / "metrics.json", metrics)
        log.info("done in %.1f s: %s", seconds, out_dir)
        return RunResult(out_dir=out_dir, metrics=to_jsonable(metrics), seconds=seconds, settings=settings)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _no_write(*args: Any, **kwargs: Any) -> None:
    """What a rank > 0 does instead of writing a run file."""


def _previous_threads(out_dir: Path) -> int:
    """The thread count the run's previous session used (0 if unknown).

    A continued run keeps it when ``run.threads`` is automatic: torch's parallel reductions sum
    in an order that depends on the thread count, and a resumed run should end bitwise-equal to
    an uninterrupted one.
    """
    from mlcore.io import read_json

    try:
        used = read_json(out_dir / "environment.json").get("torch_threads")
    except (OSError, ValueError, AttributeError):
        return 0
    return used if isinstance(used, int) and not isinstance(used, bool) and used > 0 else 0


def _read_summary(out_dir: Path, read_json: Any) -> dict[str, Any]:
    try:
        data = read_json(out_dir / "summary.json")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def train(
    config: str | Path | Mapping[str, Any],
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    device: str | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Train from a ``[dataset]/[model]/[loss]/[trainer]/[evaluator]`` config (``mlcore train``)."""
    return run(
        "mlcore",
        pipeline="train",
        profile="default",
        config=config,
        overrides=overrides,
        out=out,
        device=device,
        seed=seed,
        threads=threads,
        progress=progress,
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an mlcore checkpoint (``torch.load(weights_only=True)``) with a clear error if it is not one."""
    from mlcore.training.checkpoint import load_checkpoint as _load

    return _load(path)


#: Limits on the component configs a checkpoint's metadata carries, checked before anything is
#: built from them (a crafted ``num_samples=1e9`` would otherwise allocate gigabytes first).
#: Seeds are exempt from the integer bound; ``--set`` data overrides of ``evaluate`` are trusted.
META_LIMITS = {"int": 10**8, "str": 4096, "items": 10_000, "depth": 8}


def validate_checkpoint_meta(ckpt: Mapping[str, Any], path: str | Path) -> None:
    """Check the types and sizes of a checkpoint's component configs; one-line CheckpointError naming the field."""
    import math

    meta = ckpt.get("meta")
    if meta is None:
        return
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"{path}: checkpoint field 'meta' must be a table, got {type(meta).__name__}")
    components = meta.get("components") or {}
    if not isinstance(components, Mapping):
        raise CheckpointError(f"{path}: checkpoint field 'meta.components' must be a table")

    def check(value: Any, key: str, depth: int) -> None:
        bad = ""
        if depth > META_LIMITS["depth"]:
            bad = f"is nested deeper than {META_LIMITS['depth']} levels"
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int):
            if abs(value) > META_LIMITS["int"] and not key.rsplit(".", 1)[-1].endswith("seed"):
                bad = f"={value} is over the limit {META_LIMITS['int']}"
        elif isinstance(value, float):
            if not math.isfinite(value) or (value.is_integer() and abs(value) > META_LIMITS["int"]):
                bad = f"={value} is not allowed (finite, at most {META_LIMITS['int']})"
        elif isinstance(value, str):
            if len(value) > META_LIMITS["str"]:
                bad = f"is a string of {len(value)} characters (limit {META_LIMITS['str']})"
        elif isinstance(value, list | tuple):
            if len(value) > META_LIMITS["items"]:
                bad = f"has {len(value)} items (limit {META_LIMITS['items']})"
            else:
                for i, item in enumerate(value):
                    check(item, f"{key}[{i}]", depth + 1)
        elif isinstance(value, Mapping):
            if len(value) > META_LIMITS["items"]:
                bad = f"has {len(value)} keys (limit {META_LIMITS['items']})"
            else:
                for k, item in value.items():
                    if not isinstance(k, str):
                        bad = f"has a non-string key {k!r}"
                        break
                    check(item, f"{key}.{k}", depth + 1)
        else:
            bad = f"holds a {type(value).__name__}, not a config value"
        if bad:
            sep = "" if bad.startswith("=") else " "
            raise CheckpointError(f"{path}: checkpoint metadata {key}{sep}{bad}; refusing to build from it")

    for kind, section in components.items():
        if not isinstance(section, Mapping) or not isinstance(section.get("name"), str):
            raise CheckpointError(f"{path}: checkpoint metadata for the {kind} is malformed (needs a name)")
        check(section.get("config") or {}, str(kind), 1)


def _component(ckpt: Mapping[str, Any], kind: str, path: str | Path) -> tuple[str, dict[str, Any]] | None:
    section = (ckpt.get("meta") or {}).get("components", {}).get(kind)
    if section is None:
        return None
    if not isinstance(section, Mapping) or "name" not in section:
        raise CheckpointError(f"{path}: checkpoint metadata for the {kind} is malformed")
    return section["name"], dict(section.get("config") or {})


def rebuild_data(ckpt: Mapping[str, Any], path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """The data module a checkpoint was trained on, with its saved state (normalisation) restored.

    The checkpoint's metadata is validated first (:func:`validate_checkpoint_meta`).
    """
    validate_checkpoint_meta(ckpt, path)
    found = _component(ckpt, "dataset", path)
    if found is None:
        raise CheckpointError(f"{path}: checkpoint names no dataset, so it cannot be evaluated without one")
    name, cfg = found
    cfg = apply_overrides(cfg, overrides)
    data = build("dataset", name, cfg)
    state = (ckpt.get("meta") or {}).get("data_state")
    if state:
        data.load_state_dict(state)
    return data.prepare()


def evaluate(
    checkpoint: str | Path,
    *,
    out_dir: str | Path | None = None,
    device: str = "auto",
    evaluator: str | None = None,
    data_overrides: Sequence[str] = (),
    threads: int | None = None,
) -> dict[str, float]:
    """Evaluate a checkpoint with the evaluator and data it was trained with (``mlcore evaluate``).

    Results go to ``<out_dir>/metrics.json`` (default: the checkpoint's run directory ``evaluation/``,
    under the run directory's lock, so evaluating a run that is still training there is refused).
    ``threads``: torch intra-op threads (default: :func:`mlcore.runs.default_threads`).
    """
    from mlcore.devices import resolve_device
    from mlcore.runs import RunLock, apply_threads
    from mlcore.training.checkpoint import build_model

    if threads is not None and threads < 0:
        raise ConfigError(f"--threads {threads}: must be 0 (automatic) or a positive count")
    apply_threads(threads or 0)
    path = Path(checkpoint)
    ckpt = load_checkpoint(path)
    validate_checkpoint_meta(ckpt, path)
    torch_device = resolve_device(device)
    ev_cfg: dict[str, Any] = {}
    if evaluator is not None:
        ev_name = evaluator
    else:
        found = _component(ckpt, "evaluator", path)
        if found is None:
            raise CheckpointError(f"{path}: checkpoint names no evaluator; pass one with --evaluator NAME")
        ev_name, ev_cfg = found
    ev = build("evaluator", ev_name, ev_cfg)
    target = Path(out_dir) if out_dir is not None else path.parent.parent / "evaluation"
    run_dir = path.parent.parent
    # writing into a run directory: take its lock, so a run still training there is not raced
    lock = RunLock(run_dir) if out_dir is None and (run_dir / "config.toml").is_file() else None
    if lock is not None:
        lock.acquire()
    try:
        target.mkdir(parents=True, exist_ok=True)
        if hasattr(ev, "evaluate_checkpoint"):
            metrics = ev.evaluate_checkpoint(ckpt, device=torch_device, out_dir=target)
        else:
            model = build_model(ckpt, device=torch_device)
            data = rebuild_data(ckpt, path, data_overrides)
            metrics = ev.evaluate(model, data, device=torch_device, out_dir=target)
        from mlcore.io import atomic_write_json

        atomic_write_json(target / "metrics.json", metrics)
    finally:
        if lock is not None:
            lock.release()
    return dict(metrics)


def export(
    checkpoint: str | Path,
    *,
    format: str = "onnx",
    out: str | Path | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    onnx_exporter: str = "auto",
) -> Any:
    """Export a checkpoint's model to TorchScript or ONNX and verify it against eager outputs.

    ``onnx_exporter``: ``"auto"`` (torch.export-based, falling back to legacy), ``"dynamo"`` or
    ``"legacy"`` (the TorchScript-based exporter: several times faster to run, deprecated by torch).
    Returns an :class:`mlcore.exporting.ExportResult` (path, max abs diff, tolerance, ok).
    """
    from mlcore.exporting import export_model
    from mlcore.training.checkpoint import build_model

    formats = ("torchscript", "onnx")
    if format not in formats:
        raise ConfigError(f"format={format!r} is not allowed (allowed: {', '.join(formats)})")
    path = Path(checkpoint)
    ckpt = load_checkpoint(path)
    validate_checkpoint_meta(ckpt, path)
    model = build_model(ckpt, device="cpu").eval()
    if not hasattr(model, "example_input"):
        raise MlcoreError(f"{path}: model {type(model).__name__} defines no example_input(), so it cannot be exported")
    suffix = ".onnx" if format == "onnx" else ".ts"
    target = Path(out) if out is not None else path.with_suffix(suffix)
    example = cast(Any, model).example_input(2)
    return export_model(model, example, target, format=format, atol=atol, rtol=rtol, onnx_exporter=onnx_exporter)


def generate_data(
    dataset: str,
    out: str | Path,
    *,
    num_samples: int | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
) -> list[Path]:
    """Write a dataset's files under ``out`` (``mlcore data generate``); returns the paths."""
    spec = get_registry().get("dataset", dataset)
    cls = spec.config_class()
    values: dict[str, Any] = apply_overrides({}, overrides)
    names = {f.name for f in attrs.fields(cls)} if cls is not None else set()
    for key, value in (("num_samples", num_samples), ("seed", seed)):
        if value is None:
            continue
        if key not in names:
            flag = key.replace("_", "-")
            raise ConfigError(f"dataset {dataset!r} has no {key!r} option, so --{flag} does not apply")
        values[key] = value
    data = spec.build(spec.make_config(values, where="dataset."))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [Path(p) for p in data.generate(out_dir)]


def compare(run_dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """One row per run: metrics, parameters, training time, epochs-to-best and the config keys that differ.

    Differing config keys appear as ``config.<table>.<key>`` (``mlcore compare``).
    """
    from mlcore.comparison import compare_runs

    return compare_runs([Path(d) for d in run_dirs])


def tune(
    plugin: str | None = None,
    *,
    pipeline: str | None = None,
    profile: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    engine: str = "optuna",
    trials: int | None = None,
    jobs: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    threads: int | None = None,
    scheduler: str = "asha",
    searcher: str = "optuna",
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    address: str | None = None,
) -> Any:
    """Hyperparameter search over the config's ``[search.space]`` (``mlcore tune``; see docs/tuning.md).

    Every trial is a :func:`run` under ``<out>/trials/NNNN``; the study in ``out`` resumes when run
    again. ``engine``: ``"optuna"`` (needs ``mlcore[tune]``) or ``"ray"`` (``mlcore[ray]``; ``scheduler``
    asha|pbt|fifo, ``searcher`` optuna|random, ``cpus_per_trial``, ``gpus_per_trial``, ``address``).
    Returns a :class:`mlcore.tuning.TuneResult` (best value, params and ``best_config.toml``, all trials).
    """
    from mlcore.tuning import require

    require(engine)
    from mlcore.tuning.search import tune as _tune

    return _tune(
        plugin,
        pipeline=pipeline,
        profile=profile,
        config=config,
        overrides=overrides,
        out=out,
        engine=engine,
        trials=trials,
        jobs=jobs,
        seed=seed,
        device=device,
        threads=threads,
        scheduler=scheduler,
        searcher=searcher,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        address=address,
        resolve_fn=resolve,
        run_fn=run,
    )


def __getattr__(name: str) -> Any:
    """``run_experiment`` / ``experiment_status`` (``mlcore pipeline run|status``), from :mod:`mlcore.experiment`.

    Re-exported lazily: the experiment stages are built on this module, so it must not import them.
    """
    if name in ("run_experiment", "experiment_status"):
        import mlcore.experiment

        return getattr(mlcore.experiment, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
