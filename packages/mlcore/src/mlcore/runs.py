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
"""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

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
    *, device: Any = None, seed: int | None = None, plugins: list[str] | None = None
) -> dict[str, Any]:
    """Versions and provenance of the current process, for ``environment.json``."""
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
