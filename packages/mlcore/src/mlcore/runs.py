"""Run directories: layout, the context handed to pipelines, and the environment record.

Layout of a run directory (see ``docs/architecture.md``)::

    <out>/config.toml            the full resolved config ([run] table + pipeline config)
    <out>/environment.json       Python/torch/mlcore/plugin versions, device, seed, command, git commit
    <out>/training_stats.json    per-epoch losses, metrics, learning rate, seconds
    <out>/training_curves.png    the same, drawn
    <out>/checkpoints/best.pt    best by the monitored metric; last.pt beside it
    <out>/metrics.json           the evaluator's figures
    <out>/report.md              a human summary; its plots live under plots/
    <out>/tensorboard/           event files
    <out>/summary.json           status (completed/interrupted), seconds, metrics
    <out>/.lock                  held (flock) by the process running in the directory

A run holds :class:`RunLock` on its directory for its whole duration, so two processes never
write into one run directory; the operating system releases the lock when the holder dies.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from mlcore.errors import ConfigError, MlcoreError
from mlcore.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@attrs.define
class RunContext:
    """What a pipeline gets to run with.

    Attributes:
        out_dir: the run directory (created).
        device: the resolved torch device.
        seed: the run's seed (already applied with :func:`mlcore.seeding.seed_everything`).
        plugin, pipeline, profile: what is being run.
        config: the pipeline's structured config.
        meta: provenance stored in every checkpoint (plugin, versions, ...).
        progress: whether to show progress bars.
    """

    out_dir: Path
    device: torch.device
    seed: int
    plugin: str
    pipeline: str
    profile: str
    config: Any
    meta: dict[str, Any] = attrs.field(factory=dict)
    progress: bool = True

    def path(self, *parts: str) -> Path:
        """A path inside the run directory (parent folders created)."""
        p = self.out_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def plots_dir(self) -> Path:
        """``<out>/plots``, created."""
        p = self.out_dir / "plots"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``<out>/<name>`` atomically as JSON."""
        return atomic_write_json(self.path(name), data)

    def write_text(self, name: str, text: str) -> Path:
        """Write ``<out>/<name>`` atomically as text."""
        return atomic_write_text(self.path(name), text)


def default_run_dir(plugin: str, pipeline: str, root: str | Path = "runs") -> Path:
    """``runs/<plugin>-<pipeline>-<YYYYmmdd-HHMMSS>`` (a numeric suffix avoids clashes)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{plugin}-{pipeline}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def git_commit(cwd: Path | None = None) -> str | None:
    """The current git commit (with ``-dirty``), or ``None`` outside a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return None


def environment_record(
    *, device: Any = None, seed: int | None = None, plugins: list[str] | None = None, threads: int | None = None
) -> dict[str, Any]:
    """Versions and provenance of the current process, for ``environment.json``.

    ``threads`` is the ``run.threads`` setting (0 = automatic); ``torch_threads`` the number in use.
    """
    from importlib import metadata

    from mlcore._version import PLUGIN_API_VERSION, __version__
    from mlcore.registry import get_registry

    record: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "mlcore": __version__,
        "plugin_api": PLUGIN_API_VERSION,
        "device": str(device) if device is not None else None,
        "seed": seed,
        "threads_setting": threads,
        "available_cpus": available_cpus(),
        "command": sys.argv,
        "git_commit": git_commit(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for pkg in ("torch", "numpy"):
        try:
            record[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            record[pkg] = None
    reg = get_registry()
    record["plugins"] = {
        name: info.version
        for name, info in reg.plugins.items()
        if info.status == "ok" and (plugins is None or name in plugins)
    }
    try:
        import torch

        record["torch_threads"] = torch.get_num_threads()
        record["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
    except ImportError:
        pass
    return record


LOCK_NAME = ".lock"

#: Names left behind by :func:`mlcore.io.atomic_write` when the writer was killed before its rename:
#: ``tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")`` adds 8 characters of ``[a-z0-9_]``.
STALE_TMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
#: The trainer's own fixed temporary names (``mlcore.training._run_files``): the per-epoch stats
#: update and the hard link that becomes ``best.pt``.
TRAINER_TMP = re.compile(r"^\.(training_stats\.json|.+\.pt\.link)\.tmp$")


class RunLockedError(MlcoreError):
    """Another process holds the lock of a run directory."""


def _lock_fd(fd: int) -> bool:
    """Take an exclusive, non-blocking lock on ``fd``; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


class RunLock:
    """An exclusive lock on a run directory, held by this process until :meth:`release`.

    ``fcntl.flock`` on ``<run>/.lock`` (``msvcrt.locking`` on Windows): the kernel drops it when the
    process exits, however it dies, so ``kill -9`` never leaves a stale lock. The file holds the
    holder's pid, which a refused second run names. Use as a context manager.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLockedError` naming the holder's pid."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if not _lock_fd(fd):
                os.close(fd)
                raise RunLockedError(
                    f"{self.run_dir}: another run (pid {self._holder()}) is using this run directory; "
                    "wait for it to finish or pick another --out"
                )
            try:  # the file we locked must still be the one at self.path (not unlinked meanwhile)
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def _holder(self) -> str:
        deadline = time.monotonic() + 1.0  # the holder writes its pid right after locking
        while True:
            try:
                pid = self.path.read_text(encoding="utf-8").strip()
            except OSError:
                pid = ""
            if pid or time.monotonic() > deadline:
                return pid or "unknown"
            time.sleep(0.02)

    def release(self) -> None:
        """Release the lock (the lock file stays; it is empty and unlocked)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def prepare_run_dir(out: str | Path) -> tuple[Path, bool]:
    """Check ``out`` can be a run directory and create it; returns ``(path, created)``.

    Raises one-line :class:`ConfigError`/:class:`MlcoreError` for an empty path, an existing file,
    or a directory that cannot be created or written (read-only, full disk).
    """
    if not str(out).strip():
        raise ConfigError("--out '': the run directory must be a non-empty path")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: exists and is not a directory; pick another --out")
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlcoreError(f"{path}: cannot create the run directory ({describe_os_error(exc)})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise MlcoreError(f"{path}: cannot write into the run directory (permission denied)")
    return path, created


def describe_os_error(exc: OSError) -> str:
    """``"No space left on device"``-style cause of an OS error, without the path."""
    return exc.strerror or str(exc) or type(exc).__name__


def remove_stale_tmp(run_dir: Path) -> list[Path]:
    """Delete temporary files of killed atomic writes under ``run_dir``; returns what was removed.

    Only names matching :data:`STALE_TMP` or :data:`TRAINER_TMP` are touched. Call it with the run's lock held: no other
    process writes there then, so every such file is a leftover.
    """
    removed = []
    for root, _dirs, files in os.walk(run_dir):
        for name in files:
            if STALE_TMP.match(name) or TRAINER_TMP.match(name):
                p = Path(root) / name
                try:
                    p.unlink()
                except FileNotFoundError:
                    continue
                removed.append(p)
    if removed:
        log.info("removed %d stale temporary file(s) of interrupted writes in %s", len(removed), run_dir)
    return removed


#: Upper bound of the default thread count: intra-op parallelism on CPU rarely pays beyond it.
MAX_DEFAULT_THREADS = 8


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, further limited by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:  # cgroup v2: "<quota> <period>" or "max <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def idle_cpus(cpus: int) -> int:
    """Of ``cpus``, how many are not already busy: ``cpus`` minus the 1-minute load average, at least 1.

    Without a load average (not Unix), all of them.
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cpus
    return max(1, min(cpus, int(cpus - load + 0.5)))


def default_threads() -> int:
    """torch intra-op threads when ``run.threads`` is 0: never more than the idle share of this process.

    The CPUs available to this process (:func:`available_cpus`) that are not already busy
    (:func:`idle_cpus`: a thread that has to wait for a busy core stalls the others at every
    parallel op, which made small models 20-50x slower in ``tools/bench/threads.py``), divided among
    the processes of a distributed run on this node (``LOCAL_WORLD_SIZE``), capped at
    :data:`MAX_DEFAULT_THREADS` and by ``OMP_NUM_THREADS`` when that is set.
    """
    local, cap = 1, MAX_DEFAULT_THREADS
    with contextlib.suppress(ValueError):
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or 1))
    with contextlib.suppress(ValueError):
        cap = min(cap, max(1, int(os.environ.get("OMP_NUM_THREADS") or cap)))
    return max(1, min(idle_cpus(available_cpus()) // local, cap))


def apply_threads(threads: int) -> int:
    """Set torch's intra-op threads (``0`` = :func:`default_threads`); returns the number set."""
    import torch

    n = threads if threads > 0 else default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def checkpoint_files(run_dir: Path) -> dict[str, tuple[int, int]]:
    """``{name: (mtime_ns, size)}`` of the ``*.pt`` files under ``<run>/checkpoints``."""
    found = {}
    for p in sorted((run_dir / "checkpoints").glob("*.pt")):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        found[p.name] = (st.st_mtime_ns, st.st_size)
    return found
