"""What this installation can do (``mlcore doctor``): devices, memory, versions, threads, extras.

:func:`diagnose` returns rows ``{"section", "item", "status", "detail"}`` where ``status`` is
``ok``, ``missing`` (an optional feature that is not installed; ``detail`` says what to install),
``unavailable`` (hardware this machine lacks), ``failed`` (a plugin that did not load) or ``info``.
The optional features are read from mlcore's own package metadata (its extras), so a new extra
shows up without a change here.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

__all__ = ["diagnose", "extras_status"]


def _row(section: str, item: str, status: str, detail: str = "") -> dict[str, str]:
    return {"section": section, "item": item, "status": status, "detail": detail}


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def _meminfo() -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    found[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return found


def extras_status(distribution: str = "mlcore") -> dict[str, list[tuple[str, str | None, bool]]]:
    """``{extra: [(requirement, installed version or None, satisfied)]}`` from a distribution's metadata."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return {}
    extras: dict[str, list[tuple[str, str | None, bool]]] = {}
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is None:
            continue
        extra = next(
            (
                e
                for e in metadata.metadata(distribution).get_all("Provides-Extra") or []
                if req.marker.evaluate({"extra": e})
            ),
            None,
        )
        if extra is None:
            continue
        try:
            version: str | None = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            version = None
        ok = version is not None and (not req.specifier or req.specifier.contains(version, prereleases=True))
        extras.setdefault(extra, []).append((f"{req.name}{req.specifier}", version, ok))
    return extras


def diagnose() -> list[dict[str, str]]:
    """Rows describing this installation: system, threads, devices, versions, plugins, optional features."""
    import torch

    from mlcore._version import PLUGIN_API_VERSION, __version__
    from mlcore.registry import get_registry
    from mlcore.runs import available_cpus, default_threads, idle_cpus

    rows = [
        _row("system", "python", "info", f"{sys.version.split()[0]} ({sys.executable})"),
        _row("system", "platform", "info", platform.platform()),
    ]
    mem = _meminfo()
    if mem:
        rows.append(
            _row(
                "system", "memory", "info", f"{_gib(mem.get('MemAvailable'))} available of {_gib(mem.get('MemTotal'))}"
            )
        )
    cpus = available_cpus()
    rows += [
        _row("threads", "cpus", "info", f"{cpus} available to this process, {idle_cpus(cpus)} idle now"),
        _row(
            "threads",
            "torch threads",
            "info",
            f"{default_threads()} by default (run.threads = 0); torch now {torch.get_num_threads()}, "
            f"inter-op {torch.get_num_interop_threads()}",
        ),
        _row("threads", "OMP_NUM_THREADS", "info", os.environ.get("OMP_NUM_THREADS", "(unset)")),
        _row("devices", "cpu", "ok", platform.processor() or platform.machine()),
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            rows.append(_row("devices", f"cuda:{i}", "ok", f"{props.name}, {_gib(props.total_memory)}"))
    else:
        built = torch.version.cuda
        why = f"torch built with CUDA {built} but no GPU/driver found" if built else "torch is a CPU-only build"
        rows.append(_row("devices", "cuda", "unavailable", why))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        rows.append(_row("devices", "mps", "ok", "Apple GPU"))
    else:
        rows.append(_row("devices", "mps", "unavailable", "Apple-silicon GPUs only"))
    if torch.distributed.is_available():
        backends = [
            name
            for name, check in (
                ("gloo", torch.distributed.is_gloo_available),
                ("nccl", torch.distributed.is_nccl_available),
                ("mpi", torch.distributed.is_mpi_available),
            )
            if check()
        ]
        rows.append(_row("features", "distributed (DDP)", "ok", "backends: " + ", ".join(backends or ["none"])))
    else:
        rows.append(_row("features", "distributed (DDP)", "unavailable", "torch built without torch.distributed"))
    rows.append(_row("versions", "mlcore", "ok", f"{__version__} (plugin API {PLUGIN_API_VERSION})"))
    for pkg in ("torch", "numpy", "pluggy", "click", "attrs"):
        try:
            rows.append(_row("versions", pkg, "ok", metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append(_row("versions", pkg, "missing", "not installed"))
    for name, info in sorted(get_registry().plugins.items()):
        if name == "mlcore":
            continue
        if info.status == "ok":
            rows.append(_row("plugins", name, "ok", f"{info.version} ({info.distribution or info.module})"))
        elif info.status == "disabled":
            rows.append(_row("plugins", name, "info", f"{info.version}: not selected by MLCORE_PLUGINS"))
        else:
            rows.append(_row("plugins", name, "failed", info.reason))
    for extra, reqs in sorted(extras_status().items()):
        missing = [req for req, _, ok in reqs if not ok]
        if missing:
            detail = f"needs {', '.join(missing)}: pip install 'mlcore[{extra}]'"
            rows.append(_row("extras", extra, "missing", detail))
        else:
            rows.append(
                _row("extras", extra, "ok", ", ".join(f"{r.split('>')[0].split('=')[0]} {v}" for r, v, _ in reqs))
            )
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as one aligned table (section, item, status, detail)."""
    from mlcore.comparison import format_table

    return format_table([{k: r[k] for k in ("section", "item", "status", "detail")} for r in rows])
