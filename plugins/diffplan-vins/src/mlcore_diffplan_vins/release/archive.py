"""Packing a release directory into a ``.tar.gz`` and unpacking one safely.

Packing writes a temporary file beside the target and renames it (a reader never sees half an
archive). Unpacking refuses any member that would land outside the destination (absolute paths,
``..``, links pointing out, devices): with :mod:`tarfile`'s ``"data"`` filter where Python has it
(3.10.12+, 3.11.4+), and by an equivalent check of every member otherwise.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from mlcore.errors import DataError

__all__ = ["extract_release", "pack_release"]


def pack_release(root: str | Path, archive: str | Path) -> Path:
    """Write ``root`` (a release directory) as ``archive`` (``.tar.gz``), members under ``<root name>/``."""
    from mlcore.io import atomic_write

    src = Path(root)
    if not src.is_dir():
        raise DataError(f"{src}: no release directory to pack")

    def write(fh: object) -> None:
        with tarfile.open(fileobj=fh, mode="w:gz") as tar:  # type: ignore[call-overload]
            for path in sorted(src.rglob("*")):
                if path.name.startswith(".") or path.is_symlink():
                    continue  # lock files, temporary files; links are never packed
                tar.add(path, arcname=str(Path(src.name) / path.relative_to(src)), recursive=False)

    return atomic_write(archive, write)  # type: ignore[arg-type]


def _unsafe(member: tarfile.TarInfo, dest: Path) -> str:
    """Why ``member`` may not be extracted into ``dest`` ("" when it may)."""
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name):
        return "an absolute path"
    target = (dest / name).resolve()
    if dest != target and dest not in target.parents:
        return "a path outside the destination"
    if member.issym() or member.islnk():
        return "a link"
    if not (member.isfile() or member.isdir()):
        return "a special file"
    return ""


def extract_release(archive: str | Path, dest: str | Path) -> Path:
    """Extract a release archive into ``dest``; returns the release root inside it.

    A missing or unreadable archive, or a member that would escape ``dest``, is a one-line
    :class:`~mlcore.errors.DataError` naming the archive (and the member); nothing is extracted then.
    """
    path = Path(archive)
    if not path.is_file():
        raise DataError(f"release archive not found: {path}")
    out = Path(dest).resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(path, mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                why = _unsafe(member, out)
                if why:
                    raise DataError(f"{path}: member {member.name!r} is {why}; refusing to extract the archive")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(out, members=members, filter="data")
            else:  # pragma: no cover - Python without extraction filters; every member was checked above
                tar.extractall(out, members=members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, getattr(tarfile, "FilterError", ())):
            raise DataError(f"{path}: unsafe member refused ({exc})") from None
        raise DataError(f"{path}: not a readable release archive ({type(exc).__name__}: {exc})") from None
    roots = {Path(m.name).parts[0] for m in members if Path(m.name).parts}
    if len(roots) != 1:
        raise DataError(f"{path}: a release archive holds one top directory, found {sorted(roots) or 'none'}")
    return out / roots.pop()
