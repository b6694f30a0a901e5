"""Packing and unpacking a release: a round trip, and every escaping member refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from mlcore.errors import DataError
from mlcore_diffplan_vins.release.archive import extract_release, pack_release


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_keeps_every_file_and_skips_hidden_ones(tmp_path: Path) -> None:
    root = tmp_path / "pretrained_models"
    (root / "grid" / "A").mkdir(parents=True)
    (root / "grid" / "A" / "A_info.json").write_text("{}")
    (root / "README.md").write_text("hello")
    (root / "grid" / "A" / ".lock").write_text("")
    archive = pack_release(root, tmp_path / "r.tar.gz")
    out = extract_release(archive, tmp_path / "x")
    assert out == (tmp_path / "x" / "pretrained_models").resolve()
    assert _tree(out) == {"README.md": b"hello", "grid/A/A_info.json": b"{}"}
    assert not list(tmp_path.glob("*.tmp"))


def _archive_with(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("pretrained_models/README.md")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        if member.isfile():
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
        else:
            tar.addfile(member)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_member("pretrained_models/../../evil.txt"), "a path outside the destination"),
        (_member("/tmp/evil-absolute.txt"), "an absolute path"),
        (_member("pretrained_models/link", tarfile.SYMTYPE, "/etc/passwd"), "a link"),
        (_member("pretrained_models/fifo", tarfile.FIFOTYPE), "a special file"),
    ],
    ids=["dotdot", "absolute", "symlink", "fifo"],
)
def test_escaping_members_are_refused_and_nothing_is_extracted(
    tmp_path: Path, member: tarfile.TarInfo, why: str
) -> None:
    archive = _archive_with(tmp_path / "evil.tar.gz", member)
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(DataError, match=rf"evil.tar.gz: member '.*' is {why}; refusing to extract"):
        extract_release(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "dest" / "evil.txt").exists()
    assert list(dest.rglob("*")) == []  # not even the harmless member


def test_missing_and_unreadable_archives_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"release archive not found: .*nope.tar.gz"):
        extract_release(tmp_path / "nope.tar.gz", tmp_path / "x")
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tar file at all")
    with pytest.raises(DataError, match=r"bad.tar.gz: not a readable release archive"):
        extract_release(tmp_path / "bad.tar.gz", tmp_path / "x")
    with pytest.raises(DataError, match=r"no release directory to pack"):
        pack_release(tmp_path / "missing", tmp_path / "r.tar.gz")
