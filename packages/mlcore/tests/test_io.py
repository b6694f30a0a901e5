"""Tests of mlcore.io: atomic writes (temporary file, fsync, rename) and JSON conversion."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mlcore import io


def test_atomic_write_fsyncs_the_temporary_file_before_replacing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, Any]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if Path("/proc/self/fd").exists() else fd))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", (str(src), str(dst))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "out.bin"

    def write(fh: Any) -> None:
        events.append(("write", fh.name))
        fh.write(b"data")

    io.atomic_write(target, write)
    assert [e[0] for e in events] == ["write", "fsync", "replace"]
    tmp_name, dst = events[2][1]
    assert dst == str(target) and Path(tmp_name).parent == tmp_path and Path(tmp_name).name.startswith(".out.bin.")
    if isinstance(events[1][1], str):
        assert events[1][1] == tmp_name  # the temporary file is the one made durable
    assert target.read_bytes() == b"data" and list(tmp_path.iterdir()) == [target]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    io.atomic_write_json(target, {"a": 1})

    def boom(fh: Any) -> None:
        fh.write(b"half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        io.atomic_write(target, boom)
    assert io.read_json(target) == {"a": 1} and list(tmp_path.iterdir()) == [target]


def test_json_conversion_of_numpy_tensors_paths_and_non_finite(tmp_path: Path) -> None:
    data = {
        "np": np.float32(1.5),
        "arr": np.arange(3),
        "t": torch.tensor([1.0, float("nan")]),
        "p": Path("/x/y"),
        "inf": math.inf,
        7: (1, 2),
    }
    path = io.atomic_write_json(tmp_path / "d.json", data)
    assert json.loads(path.read_text()) == {
        "np": 1.5,
        "arr": [0, 1, 2],
        "t": [1.0, None],
        "p": "/x/y",
        "inf": None,
        "7": [1, 2],
    }
    assert io.atomic_write_text(tmp_path / "t.txt", "héllo").read_bytes() == "héllo".encode()
