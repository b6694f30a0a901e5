"""Several training runs at once, each in its own process (``mlcore run-many``).

Example::

    from mlcore.parallel import Job, run_jobs

    jobs = [
        Job("linear", "continuous-dynamics", Path("runs/cmp/linear"), overrides=["model.name=linear_dynamics"],
            group="fast"),
        Job("gru", "continuous-dynamics", Path("runs/cmp/gru"), overrides=["model.name=gru_dynamics"], group="fast"),
        Job("lstm", "continuous-dynamics", Path("runs/cmp/lstm"), overrides=["model.name=lstm_predictor"],
            group="heavy"),
    ]
    results = run_jobs(jobs, max_parallel={"fast": 2, "heavy": 1})

Groups run one after another in the order they first appear; inside a group up to ``max_parallel``
jobs run at once, each a ``spawn``-ed process calling :func:`mlcore.api.run` into ``Job.out``.
The core's thread setting is divided between the jobs running at the same time. A job's failure
(an exception, a crash, even ``kill -9``) is reported with its error line and does not stop the
others. Ctrl-C or SIGTERM stops every running job cleanly (each writes its ``last.pt``); running
the same jobs again resumes them, and a job whose run directory already holds a completed run with
the same config is not started at all.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import attrs

from mlcore._workers import watch_parent
from mlcore.errors import ConfigError

if TYPE_CHECKING:
    from mlcore.api import RunOptions

log = logging.getLogger(__name__)

JobStatus = Literal["completed", "failed", "interrupted"]

#: Seconds a stopping job gets to write its checkpoint after SIGTERM before it is killed.
STOP_TIMEOUT = 120.0
#: The file in a job's run directory that receives the job process's stdout and stderr.
OUTPUT_LOG = "output.log"


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@attrs.frozen
class Job:
    """One training run in its own process: :func:`mlcore.api.run` with these arguments into ``out``.

    ``group``: jobs of one group run side by side; groups run one after another.
    """

    name: str
    plugin: str
    out: Path = attrs.field(converter=Path)
    pipeline: str | None = None
    profile: str | None = None
    config: Mapping[str, Any] | Path | None = None
    overrides: Sequence[str] = attrs.field(default=(), converter=_strings)
    group: str = "default"

    def options(self, threads: int | None = None) -> RunOptions:
        """The :class:`mlcore.api.RunOptions` of this job's run (``threads``: its share of the thread setting)."""
        from mlcore.api import RunOptions

        return RunOptions(
            self.plugin, self.pipeline, self.profile, self.config, self.overrides, self.out, threads=threads
        )


@attrs.frozen
class JobResult:
    """How a job ended: ``status`` is ``"completed"``, ``"failed"`` or ``"interrupted"``.

    ``error`` is the one-line reason of a failure (or of an interruption); ``metrics`` the run's
    summary metrics (empty unless completed); ``wall_time`` the seconds its process ran (0.0 for a
    job skipped because its run directory already held the completed run).
    """

    name: str
    status: str
    run_dir: Path
    wall_time: float
    error: str | None = None
    metrics: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (``run_dir`` as a string)."""
        return {
            "name": self.name,
            "status": self.status,
            "run_dir": str(self.run_dir),
            "wall_time": self.wall_time,
            "error": self.error,
            "metrics": self.metrics,
        }


# ------------------------------------------------------------------------------------ planning


def _groups(jobs: Sequence[Job]) -> list[tuple[str, list[Job]]]:
    order: dict[str, list[Job]] = {}
    for job in jobs:
        order.setdefault(job.group, []).append(job)
    return list(order.items())


def _limits(groups: Sequence[tuple[str, list[Job]]], max_parallel: int | Mapping[str, int]) -> dict[str, int]:
    names = [g for g, _ in groups]
    if isinstance(max_parallel, Mapping):
        unknown = sorted(set(max_parallel) - set(names))
        if unknown:
            raise ConfigError(f"max_parallel names group {unknown[0]!r}, which no job has (groups: {', '.join(names)})")
        limits = {g: max_parallel.get(g, 1) for g in names}
    else:
        limits = dict.fromkeys(names, max_parallel)
    for group, n in limits.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"max_parallel={n!r} for group {group!r}: must be a positive integer")
    return limits


def threads_per_job(total: int, running: int) -> int:
    """The torch threads each of ``running`` simultaneous jobs gets out of ``total`` (at least 1)."""
    return max(1, total // max(1, running))


def _check_jobs(jobs: Sequence[Job]) -> None:
    seen: dict[str, Job] = {}
    outs: dict[Path, str] = {}
    for job in jobs:
        if not job.name or not re.fullmatch(r"[\w.=,+-]+", job.name):
            raise ConfigError(f"job name {job.name!r}: use letters, digits and . _ - = , + only")
        if job.name in seen:
            raise ConfigError(f"two jobs are named {job.name!r}; job names must be unique")
        seen[job.name] = job
        out = job.out.resolve()
        if out in outs:
            raise ConfigError(f"jobs {outs[out]!r} and {job.name!r} both write to {job.out}; give each its own out")
        outs[out] = job.name


def _resolve(job: Job) -> Any:
    """Resolve a job's config in the parent, so a bad key fails before any process starts."""

    try:
        return job.options().resolve()
    except ConfigError as exc:
        raise ConfigError(f"job {job.name!r}: {exc}") from None


def _already_completed(job: Job, resolved: Any) -> JobResult | None:
    """The result of a job whose run directory holds a completed run of the same config, else None."""
    from mlcore import api
    from mlcore.config import load_file
    from mlcore.io import read_json

    summary_path, config_path = job.out / "summary.json", job.out / "config.toml"
    if not (summary_path.is_file() and config_path.is_file()):
        return None
    try:
        summary = read_json(summary_path)
        saved = api._as_current_document(load_file(config_path), type(resolved.config))
    except (OSError, ValueError, ConfigError):
        return None
    if not isinstance(summary, dict) or summary.get("status") != "completed":
        return None
    if api.config_differences(saved, resolved.to_document()):
        return None
    metrics = summary.get("metrics") if isinstance(summary.get("metrics"), dict) else {}
    return JobResult(job.name, "completed", job.out, 0.0, None, dict(metrics or {}))


# ------------------------------------------------------------------------------------ the child


class _PipeHandler(logging.Handler):
    """Sends the job's log records (INFO and up) to the parent as ``("log", message)``."""

    def __init__(self, conn: Any) -> None:
        super().__init__(logging.INFO)
        self.conn = conn
        self.send_lock = threading.Lock()  # not ``self.lock``: Handler.handle() holds that one
        self._sending = threading.local()

    def send(self, message: tuple[Any, ...]) -> bool:
        """Send ``message`` whole; False when this thread is already mid-send.

        That happens when a signal handler logs (the trainer's SIGTERM handler does) while the main
        thread is inside ``conn.send``: waiting for the lock would deadlock the job, and writing would
        interleave two messages on the pipe, so the record is dropped here (``output.log`` keeps it).
        """
        if getattr(self._sending, "active", False):
            return False
        self._sending.active = True
        try:
            with self.send_lock:
                self.conn.send(message)
        finally:
            self._sending.active = False
        return True

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.send(("log", record.levelno, record.getMessage()))


def _child_main(job: Job, threads: int, conn: Any, parent_pid: int) -> None:
    """Entry point of a job's process: run the job and send ``("done", status, error, metrics)``."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch is imported: its pools size themselves from it
    os.environ["MKL_NUM_THREADS"] = str(threads)
    job.out.mkdir(parents=True, exist_ok=True)
    output = open(job.out / OUTPUT_LOG, "ab", buffering=0)  # noqa: SIM115 - kept open for the life of the process
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(output.fileno(), 1)
    os.dup2(output.fileno(), 2)
    pipe = _PipeHandler(conn)
    root = logging.getLogger()
    root.handlers.clear()
    root.addHandler(pipe)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(stream)
    root.setLevel(logging.INFO)
    threading.Thread(target=watch_parent, args=(parent_pid,), daemon=True).start()

    status, error, metrics = "failed", None, {}
    try:
        from mlcore.errors import MlcoreError, RunInterrupted
        from mlcore.io import to_jsonable

        try:
            result = job.options(threads).run(progress=False)
            status, metrics = "completed", to_jsonable(result.metrics)
        except RunInterrupted as exc:
            status, error = "interrupted", str(exc)
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted before the run started"
        except MlcoreError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
    except KeyboardInterrupt:  # during the imports
        status, error = "interrupted", "interrupted before the run started"
    finally:
        pipe.send(("done", status, error, metrics))
        conn.close()


# ------------------------------------------------------------------------------------ progress


_EPOCH = re.compile(r"^epoch (\d+)/(\d+)\b")
_VALUE = re.compile(r"\b((?:val|train)_loss|[a-z_]*(?:loss|mse|mae|reward|return|accuracy))=(\S+)")


@attrs.define
class _Live:
    """What the progress display knows about one job."""

    job: Job
    status: str = "waiting"
    started: float | None = None
    ended: float | None = None
    epoch: str = ""
    value: str = ""
    message: str = ""
    threads: int = 0

    def update(self, message: str) -> None:
        match = _EPOCH.match(message)
        if match:
            self.epoch = f"epoch {match.group(1)}/{match.group(2)}"
            values = dict(_VALUE.findall(message))
            key = "val_loss" if "val_loss" in values else "train_loss" if "train_loss" in values else None
            if key is None and values:
                key = next(iter(values))
            self.value = f"{key}={values[key]}" if key else ""
            self.message = ""
        else:
            self.message = message.splitlines()[0] if message else ""

    def line(self, width: int) -> str:
        now = time.monotonic()
        seconds = (self.ended or now) - self.started if self.started is not None else 0.0
        parts = [f"{self.job.name:<{width}}", f"{self.status:<11}"]
        if self.started is not None:
            parts.append(f"{seconds:6.1f}s")
        parts += [p for p in (self.epoch, self.value, self.message) if p]
        return "  ".join(parts)


class _Progress:
    """One line per job: redrawn in place on a terminal, plain lines (status changes, epochs at most
    every ``PLAIN_EVERY`` seconds per job) otherwise."""

    PLAIN_EVERY = 10.0

    def __init__(self, jobs: Sequence[Job], enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.live = {job.name: _Live(job) for job in jobs}
        self.width = max((len(j.name) for j in jobs), default=4)
        self.drawn = 0
        self.last_draw = 0.0
        self.last_plain: dict[str, float] = {}

    def event(self, name: str, *, status: str | None = None, message: str | None = None) -> None:
        live = self.live[name]
        if status is not None:
            live.status = status
            if status == "running":
                live.started = time.monotonic()
            elif status in ("completed", "failed", "interrupted"):
                live.ended = time.monotonic()
        if message is not None:
            live.update(message)
        if not self.enabled:
            return
        if self.tty:
            self.draw(force=status is not None)
        else:
            now = time.monotonic()
            if status is not None or now - self.last_plain.get(name, -math.inf) >= self.PLAIN_EVERY:
                self.last_plain[name] = now
                self.stream.write(live.line(self.width).rstrip() + "\n")
                self.stream.flush()

    def draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self.last_draw < 0.2:
            return
        self.last_draw = now
        columns = _terminal_columns()
        lines = [live.line(self.width)[: columns - 1] for live in self.live.values()]
        text = f"\x1b[{self.drawn}F" if self.drawn else ""
        text += "".join(f"\x1b[2K{line}\n" for line in lines)
        self.stream.write(text)
        self.stream.flush()
        self.drawn = len(lines)


def _terminal_columns() -> int:
    import shutil

    return shutil.get_terminal_size((100, 20)).columns


# ------------------------------------------------------------------------------------ running


@attrs.define
class _Running:
    job: Job
    process: Any
    conn: Any
    started: float
    done: tuple[str, str | None, dict[str, Any]] | None = None
    stop_sent: float | None = None
    output_start: int = 0  # the size of output.log when this process started: older lines are not its


def _exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the job's process was killed by {name}"
    return f"the job's process exited with code {code} without a result"


def _output_size(out: Path) -> int:
    try:
        return (out / OUTPUT_LOG).stat().st_size
    except OSError:
        return 0


def _last_error_line(out: Path, start: int = 0) -> str | None:
    """The last non-empty line this process wrote to the job's ``output.log`` (after byte ``start``:
    the file keeps earlier sessions' output), if any: a crash's message."""
    try:
        with open(out / OUTPUT_LOG, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(start, fh.tell() - 4096))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return lines[-1] if lines else None


class _StopFlag:
    """While active (main thread), SIGINT and SIGTERM set :attr:`signal_name` instead of raising, so
    the scheduling loop is never cut at a random line; it then stops the running jobs cleanly."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


def run_jobs(
    jobs: Sequence[Job],
    *,
    max_parallel: int | Mapping[str, int] = 1,
    threads: int | None = None,
    progress: bool = True,
    on_finish: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run ``jobs`` in separate processes, group after group; returns one result per job, in order.

    ``max_parallel``: jobs running at once (a mapping gives it per group; groups it does not name
    run one job at a time). ``threads``: torch threads shared by the running jobs (default
    :func:`mlcore.runs.default_threads`); each of ``n`` simultaneous jobs gets ``threads // n``
    (at least 1). ``on_finish`` is called here, in this process, as each job ends. Configs are
    resolved before anything starts, so a bad key raises :class:`~mlcore.errors.ConfigError` naming
    the job. On Ctrl-C/SIGTERM the running jobs are stopped cleanly (SIGTERM: each writes its
    ``last.pt``), jobs not started are reported ``"interrupted"`` with ``error="not started"``,
    and the results are returned; running the same jobs again resumes them.
    """
    import multiprocessing as mp

    from mlcore.runs import default_threads

    jobs = list(jobs)
    _check_jobs(jobs)
    groups = _groups(jobs)
    limits = _limits(groups, max_parallel)
    if threads is not None and threads < 0:
        raise ConfigError(f"threads={threads}: must be 0 (automatic) or a positive count")
    total_threads = threads or default_threads()
    resolved = {job.name: _resolve(job) for job in jobs}

    results: dict[str, JobResult] = {}
    display = _Progress(jobs, progress)
    ctx = mp.get_context("spawn")
    running: list[_Running] = []

    def finish(result: JobResult) -> None:
        results[result.name] = result
        display.event(result.name, status=result.status)
        if result.error and result.status != "completed" and display.enabled:
            _echo(display, f"{result.name}: {result.status}: {result.error}")
        if on_finish is not None:
            try:
                on_finish(result)
            except Exception:
                log.exception("on_finish failed for job %s", result.name)

    with _StopFlag() as stop:
        try:
            for group, members in groups:
                limit = min(limits[group], len(members))
                per_job = threads_per_job(total_threads, limit)
                pending = list(members)
                while (pending and stop.signal_name is None) or running:
                    while pending and stop.signal_name is None and len(running) < limit:
                        job = pending.pop(0)
                        done = _already_completed(job, resolved[job.name])
                        if done is not None:
                            display.event(job.name, message="already completed: not started again")
                            finish(done)
                            continue
                        display.live[job.name].threads = per_job
                        running.append(_start(ctx, job, per_job))
                        display.event(job.name, status="running")
                    if stop.signal_name is not None:
                        if any(r.stop_sent is None for r in running):
                            _echo(
                                display, f"{stop.signal_name}: stopping the running jobs (each writes its checkpoint)"
                            )
                        for r in running:
                            _signal_stop(r)
                    _poll(running, display, finish, stopping=stop.signal_name is not None)
                if stop.signal_name is not None:
                    break
        finally:
            for r in running:  # only after an unexpected error: never leave a job behind
                _signal_stop(r)
                r.process.join(timeout=STOP_TIMEOUT)
                if r.process.is_alive():
                    r.process.kill()
    for job in jobs:
        if job.name not in results:
            finish(JobResult(job.name, "interrupted", job.out, 0.0, "not started"))
    display.draw(force=True)
    return [results[job.name] for job in jobs]


def _echo(display: _Progress, text: str) -> None:
    if display.tty:
        display.drawn = 0  # the message goes below; the table is redrawn under it
    display.stream.write(text + "\n")
    display.stream.flush()


def _start(ctx: Any, job: Job, threads: int) -> _Running:
    reader, writer = ctx.Pipe(duplex=False)
    output_start = _output_size(job.out)
    process = ctx.Process(
        target=_child_main, args=(job, threads, writer, os.getpid()), name=f"mlcore-job-{job.name}", daemon=False
    )
    process.start()
    writer.close()  # the child holds the only write end
    return _Running(job, process, reader, time.monotonic(), output_start=output_start)


def _signal_stop(r: _Running) -> None:
    if r.stop_sent is None and r.process.is_alive():
        with contextlib.suppress(OSError):
            os.kill(r.process.pid, signal.SIGTERM)
        r.stop_sent = time.monotonic()


def _poll(running: list[_Running], display: _Progress, finish: Callable[[JobResult], None], *, stopping: bool) -> None:
    """Wait up to 0.5 s for messages or exits; handle them; remove finished jobs from ``running``."""
    from multiprocessing.connection import wait

    if not running:
        return
    waitables = [r.conn for r in running if not r.conn.closed] + [r.process.sentinel for r in running]
    ready = wait(waitables, timeout=0.5)
    for r in list(running):
        if r.conn in ready:
            _drain(r, display)
        if r.process.sentinel in ready or not r.process.is_alive():
            r.process.join(timeout=5)
            _drain(r, display)
            running.remove(r)
            wall = time.monotonic() - r.started
            if r.done is not None:
                status, error, metrics = r.done
                finish(JobResult(r.job.name, status, r.job.out, wall, error, metrics))
            else:
                error = _exit_description(r.process.exitcode)
                last = _last_error_line(r.job.out, r.output_start)
                if last:
                    error += f" (last output: {last})"
                finish(JobResult(r.job.name, "interrupted" if stopping else "failed", r.job.out, wall, error))
        elif r.stop_sent is not None and time.monotonic() - r.stop_sent > STOP_TIMEOUT:
            log.warning("job %s did not stop within %.0f s of SIGTERM: killing it", r.job.name, STOP_TIMEOUT)
            r.process.kill()
    display.draw()


def _drain(r: _Running, display: _Progress) -> None:
    while not r.conn.closed:
        try:
            if not r.conn.poll():
                return
            message = r.conn.recv()
        except (EOFError, OSError):
            r.conn.close()
            return
        if message[0] == "log":
            display.event(r.job.name, message=message[2])
        elif message[0] == "done":
            r.done = (message[1], message[2], message[3])


def results_table(results: Sequence[JobResult]) -> str:
    """The results as a text table: name, status, wall time, the scalar metrics, the error."""
    from mlcore.comparison import format_table

    rows = []
    for res in results:
        row: dict[str, Any] = {"job": res.name, "status": res.status, "wall_s": round(res.wall_time, 1)}
        for key, value in res.metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                row[key] = value
        if res.error:
            row["error"] = res.error if len(res.error) <= 80 else res.error[:77] + "..."
        rows.append(row)
    return format_table(rows)


# ------------------------------------------------------------------------------------ building jobs


def parse_vary(items: Sequence[str]) -> dict[str, list[str]]:
    """``["model.name=a,b"]`` -> ``{"model.name": ["a", "b"]}`` (values split on commas, kept as text)."""
    varied: dict[str, list[str]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        values = [v.strip() for v in raw.split(",")]
        if not sep or not key or any(not part for part in key.split(".")) or not all(values):
            raise ConfigError(f"--vary {item!r}: expected KEY=VALUE1,VALUE2,..., e.g. --vary model.name=gru,lstm")
        if key in varied:
            raise ConfigError(f"--vary {key} is given twice; list all its values in one --vary")
        if len(set(values)) != len(values):
            raise ConfigError(f"--vary {item!r}: a value is repeated")
        varied[key] = values
    return varied


def _job_name(choice: Sequence[tuple[str, str]]) -> str:
    def text(value: str) -> str:  # 'gru' (a quoted TOML string) names the job gru
        return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" else value

    if not choice:
        return "run"
    if len(choice) == 1:
        name = text(choice[0][1])
    else:
        name = ",".join(f"{key.rsplit('.', 1)[-1]}={text(value)}" for key, value in choice)
    return re.sub(r"[^\w.=,+-]", "_", name)


def vary_jobs(
    plugin: str,
    out: str | Path,
    vary: Mapping[str, Sequence[str]],
    *,
    pipeline: str | None = None,
    profile: str | None = None,
    config: Mapping[str, Any] | Path | None = None,
    overrides: Sequence[str] = (),
    group: str = "default",
) -> list[Job]:
    """One job per combination of the ``vary`` values (their cartesian product), each in ``out/<name>``.

    A job is named after its value when one key varies (``gru``), else ``key=value`` pairs of the
    last key segments (``name=gru,lr=0.01``). ``overrides`` apply to every job, before the varied keys.
    """
    import itertools

    keys = list(vary)
    jobs = []
    for values in itertools.product(*(vary[k] for k in keys)):
        choice = list(zip(keys, values, strict=True))
        name = _job_name(choice)
        jobs.append(
            Job(
                name=name,
                plugin=plugin,
                out=Path(out) / name,
                pipeline=pipeline,
                profile=profile,
                config=config,
                overrides=(*overrides, *(f"{k}={v}" for k, v in choice)),
                group=group,
            )
        )
    return jobs


_JOB_KEYS = ("name", "plugin", "pipeline", "profile", "config", "overrides", "group", "out")


def load_jobs(
    path: str | Path,
    out: str | Path,
    *,
    plugin: str | None = None,
    pipeline: str | None = None,
    profile: str | None = None,
    overrides: Sequence[str] = (),
) -> tuple[list[Job], int | dict[str, int] | None]:
    """Jobs listed in a TOML/YAML file (``mlcore run-many --jobs FILE``); returns ``(jobs, max_parallel)``.

    The file has ``[[jobs]]`` tables with ``name`` and optionally ``plugin``, ``pipeline``,
    ``profile``, ``config`` (a file, relative to this one), ``overrides`` (a list of ``KEY=VALUE``),
    ``group`` and ``out`` (default ``<out>/<name>``; a relative ``out`` is relative to the working
    directory, like ``--out``, while ``config`` is relative to this file), and optionally ``max_parallel`` (a number, or
    a table of numbers per group). The keyword arguments are defaults for every job;
    ``overrides`` come before each job's own.
    """
    from mlcore.config import load_file

    source = Path(path)
    doc = load_file(source)
    unknown = sorted(set(doc) - {"jobs", "max_parallel"})
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r} (allowed: jobs, max_parallel)")
    entries = doc.get("jobs")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, Mapping) for e in entries):
        raise ConfigError(f"{source}: needs at least one [[jobs]] table")
    jobs = []
    for i, entry in enumerate(entries):
        where = f"{source}: jobs[{i}]"
        bad = sorted(set(entry) - set(_JOB_KEYS))
        if bad:
            raise ConfigError(f"{where}: unknown key {bad[0]!r} (allowed: {', '.join(_JOB_KEYS)})")
        for key in ("name", "plugin", "pipeline", "profile", "config", "group", "out"):
            if key in entry and not isinstance(entry[key], str):
                raise ConfigError(f"{where}.{key}={entry[key]!r}: must be a string")
        job_overrides = entry.get("overrides", [])
        if not isinstance(job_overrides, list) or not all(isinstance(o, str) for o in job_overrides):
            raise ConfigError(f'{where}.overrides: must be a list of "KEY=VALUE" strings')
        name = entry.get("name")
        if not name:
            raise ConfigError(f"{where}: needs a name")
        job_plugin = entry.get("plugin", plugin)
        if not job_plugin:
            raise ConfigError(f"{where}: no plugin (set plugin in the job or pass --plugin)")
        config = entry.get("config")
        jobs.append(
            Job(
                name=name,
                plugin=job_plugin,
                out=Path(entry["out"]) if "out" in entry else Path(out) / name,
                pipeline=entry.get("pipeline", pipeline),
                profile=entry.get("profile", profile),
                config=(source.parent / config) if config else None,
                overrides=(*overrides, *job_overrides),
                group=entry.get("group", "default"),
            )
        )
    limit = doc.get("max_parallel")
    if limit is not None and not isinstance(limit, int | Mapping):
        raise ConfigError(f"{source}: max_parallel={limit!r} must be a number or a table of numbers per group")
    return jobs, (dict(limit) if isinstance(limit, Mapping) else limit)


def write_results(path: str | Path, results: Sequence[JobResult], **extra: Any) -> Path:
    """Write ``{"jobs": [...], **extra}`` to ``path`` atomically (``results.json`` of run-many)."""
    from mlcore.io import atomic_write_json, to_jsonable

    return atomic_write_json(Path(path), {**to_jsonable(extra), "jobs": [r.to_dict() for r in results]})
