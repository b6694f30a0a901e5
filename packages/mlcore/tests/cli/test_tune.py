"""``mlcore tune`` from the command line: one-line errors, parallel workers, a study killed and resumed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import tomli_w

from ..tuning.conftest import PLUGIN, config_with

pytest.importorskip("optuna")


@pytest.fixture
def tune_site(fake_site):
    """The toy plugin as an installed distribution (on PYTHONPATH of the subprocesses)."""
    return fake_site("tunetoy", PLUGIN, module="tunetoy_plugin")


def _write(path, config):
    path.write_text(tomli_w.dumps(config), encoding="utf-8")
    return path


def test_a_bad_space_is_one_error_line(cli, tune_site, tmp_path):
    cfg = config_with(space={"trainer.lr": {"type": "log", "low": 0.0, "high": 1.0}})
    proc = cli(["tune", "--config", str(_write(tmp_path / "s.toml", cfg))], pythonpath=tune_site, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 's.toml'}: search.space.trainer.lr.low=0.0: a log-scale parameter needs low > 0"
    ]


def test_no_config_is_one_error_line(cli, tmp_path):
    proc = cli(["tune", "--plugin", "mlcore"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: pass --config FILE with a [search] table")


@pytest.mark.slow
def test_parallel_workers_share_one_study(cli, tune_site, tmp_path):
    cfg = _write(tmp_path / "s.toml", config_with(trials=4, pruner="none"))
    proc = cli(["tune", "--config", str(cfg), "--jobs", "2", "--out", "st"], pythonpath=tune_site, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (tmp_path / "st" / "trials.csv").read_text().splitlines()[1:]
    assert len(lines) >= 4 and all(",complete," in line for line in lines)
    # each of the two workers ran its trials with half of the one thread... at least one thread
    envs = sorted((tmp_path / "st" / "trials").glob("*/environment.json"))
    assert envs and all('"torch_threads": 1' in p.read_text() for p in envs)
    assert "[worker 0]" in proc.stderr and "[worker 1]" in proc.stderr


def _finished(db):
    """Completed trials in the study's storage; 0 while Optuna is still creating its tables (the
    file exists before its schema: polling then raised "no such table" under load)."""
    with sqlite3.connect(db) as con:
        try:
            return con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return 0


@pytest.mark.slow
def test_a_study_killed_with_sigkill_resumes_without_repeating_trials(tune_site, tmp_path):
    cfg = _write(tmp_path / "s.toml", config_with(trials=4, pruner="none"))
    env = {**os.environ, "PYTHONPATH": str(tune_site)}
    cmd = [sys.executable, "-m", "mlcore", "tune", "--config", str(cfg), "--out", "st"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "st" / "study.db"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (db.exists() and _finished(db) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = _finished(db)
    assert 2 <= done < 4
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "st" / "trials").glob("*/metrics.json")}
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _finished(db) == 4
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished trials were not run again
    assert f"{done} finished trial(s) kept" in again.stderr


def _worker_pids(parent: int) -> set[int]:
    """The pids of the spawned worker processes whose parent is ``parent`` (Linux /proc)."""
    from pathlib import Path

    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_a_parallel_study_leaves_no_worker_running(tune_site, tmp_path, sig):
    cfg = config_with(trials=4, pruner="none")
    cfg["trainer"]["epochs"] = 100_000  # trials that run until they are stopped
    path = _write(tmp_path / "s.toml", cfg)
    env = {**os.environ, "PYTHONPATH": str(tune_site)}
    cmd = [sys.executable, "-m", "mlcore", "tune", "--config", str(path), "--out", "st", "--jobs", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    trials = tmp_path / "st" / "trials"
    while time.monotonic() < deadline and len(list(trials.glob("*/checkpoints/last.pt"))) < 2:
        time.sleep(0.3)
    workers = _worker_pids(proc.pid)
    assert len(workers) == 2 and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
    proc.send_signal(sig)
    proc.wait(timeout=180)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.3)
    assert not any(_alive(p) for p in workers), "a worker outlived the search"
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
        assert "search interrupted; finished trials are kept" in proc.stderr.read()
