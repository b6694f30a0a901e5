"""Run directories: the lock, stale temporary files, path checks and the default thread count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mlcore import runs
from mlcore.errors import ConfigError, MlcoreError
from mlcore.io import atomic_write
from mlcore.runs import RunLock, RunLockedError, prepare_run_dir, remove_stale_tmp


def test_lock_refuses_a_second_holder_naming_the_pid(tmp_path):
    first = RunLock(tmp_path).acquire()
    with pytest.raises(RunLockedError, match=rf"another run \(pid {os.getpid()}\) is using this run directory"):
        RunLock(tmp_path).acquire()
    first.release()
    second = RunLock(tmp_path).acquire()  # released: free again
    assert second.held
    second.release()


def test_lock_of_a_killed_process_is_released_by_the_os(tmp_path):
    holder = textwrap.dedent(
        f"""
        import sys, time
        from mlcore.runs import RunLock
        RunLock({str(tmp_path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"pid {proc.pid}\b"):
            RunLock(tmp_path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    lock = RunLock(tmp_path).acquire()  # no stale lock after kill -9
    lock.release()


def test_stale_tmp_files_of_atomic_writes_are_removed_and_nothing_else(tmp_path):
    seen: list[str] = []
    atomic_write(tmp_path / "checkpoints" / "last.pt", lambda fh: seen.extend(os.listdir(tmp_path / "checkpoints")))
    (name,) = seen  # the name atomic_write really uses for its temporary file
    assert runs.STALE_TMP.match(name)
    stale = [
        tmp_path / "checkpoints" / name,
        tmp_path / ".config.toml.k2_9xq0a.tmp",
        tmp_path / ".training_stats.json.tmp",  # the trainer's per-epoch stats update
        tmp_path / "checkpoints" / ".best.pt.link.tmp",  # the trainer's best.pt link
    ]
    keep = [tmp_path / "notes.tmp", tmp_path / ".hidden.tmp", tmp_path / "data.k2_9xq0a.tmp", tmp_path / "run.log"]
    for p in stale + keep:
        p.write_text("x")
    removed = remove_stale_tmp(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def test_run_dir_paths_fail_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="--out '': the run directory must be a non-empty path"):
        prepare_run_dir("")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigError, match=f"{afile}: exists and is not a directory"):
        prepare_run_dir(afile)
    with pytest.raises(MlcoreError, match=f"{afile / 'run'}: cannot create the run directory"):
        prepare_run_dir(afile / "run")
    path, created = prepare_run_dir(tmp_path / "a" / "b")
    assert created and path.is_dir()
    assert prepare_run_dir(path) == (path, False)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_read_only_directory_fails_in_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits: use a read-only mount
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True)
        if res.returncode != 0:
            pytest.skip("cannot mount a read-only tmpfs")
    else:
        ro.chmod(0o500)
    try:
        with pytest.raises(MlcoreError, match=f"{ro / 'run'}: cannot create the run directory"):
            prepare_run_dir(ro / "run")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)], check=True)
        ro.chmod(0o700)


def test_default_threads_never_exceed_this_process_share(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr(runs, "available_cpus", lambda: 2)
    assert runs.default_threads() == 2
    monkeypatch.setattr(runs, "available_cpus", lambda: 64)
    assert runs.default_threads() == runs.MAX_DEFAULT_THREADS
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # DDP: four processes share the node
    monkeypatch.setattr(runs, "available_cpus", lambda: 12)
    assert runs.default_threads() == 3
    monkeypatch.setattr(runs, "available_cpus", lambda: 2)
    assert runs.default_threads() == 1
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runs.default_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(runs, "available_cpus", lambda: 16)
    monkeypatch.setattr(os, "getloadavg", lambda: (12.4, 9.0, 9.0))  # a busy machine: what is left
    assert runs.default_threads() == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (30.0, 9.0, 9.0))
    assert runs.default_threads() == 1


def test_idle_cpus_subtract_the_load(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (1.4, 0.0, 0.0))
    assert runs.idle_cpus(4) == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert runs.idle_cpus(4) == 1

    def unavailable():
        raise OSError("no load average")

    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert runs.idle_cpus(4) == 4


def test_available_cpus_follow_the_affinity_mask(monkeypatch):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity masks here")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert runs.available_cpus() == 1


def test_apply_threads_sets_torch(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        assert runs.apply_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(runs, "default_threads", lambda: 2)
        assert runs.apply_threads(0) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_checkpoint_files_see_a_rewrite(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    assert runs.checkpoint_files(tmp_path) == {}
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"a")
    first = runs.checkpoint_files(tmp_path)
    time.sleep(0.01)
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"bb")
    assert runs.checkpoint_files(tmp_path) != first
