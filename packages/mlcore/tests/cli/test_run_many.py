"""``mlcore run-many`` in a fresh interpreter: the table, results.json, one-line errors, Ctrl-C and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..test_parallel import MANY_TOY


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env["MLCORE_PLUGINS"] = "manytoy"
    return env


@pytest.mark.slow
def test_vary_runs_the_product_and_writes_results(fake_site, cli, tmp_path: Path) -> None:
    site = fake_site("manytoy", MANY_TOY)
    out = tmp_path / "grid"
    proc = cli(
        [
            "run-many",
            "-p",
            "manytoy",
            "--vary",
            "value=1,2",
            "--vary",
            "mode='ok','raise'",
            "--max-parallel",
            "2",
            "--threads",
            "2",
            "--no-progress",
            "--out",
            str(out),
        ],
        pythonpath=site,
        env={"MLCORE_PLUGINS": "manytoy"},
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: 2 of 4 jobs failed (value=1,mode=raise, value=2,mode=raise); the others' results are kept"
    )
    doc = json.loads((out / "results.json").read_text())
    rows = {r["name"]: r for r in doc["jobs"]}
    assert list(rows) == ["value=1,mode=ok", "value=1,mode=raise", "value=2,mode=ok", "value=2,mode=raise"]
    assert rows["value=2,mode=ok"]["metrics"] == {"score": 20} and rows["value=2,mode=ok"]["status"] == "completed"
    assert rows["value=1,mode=raise"]["error"] == "RuntimeError: planted failure in the job"
    assert doc["max_parallel"] == 2
    assert (out / "value=2,mode=ok" / "summary.json").is_file()
    table = proc.stdout.splitlines()
    assert table[0].split()[:4] == ["job", "status", "wall_s", "score"]
    assert any(line.split()[:2] == ["value=2,mode=ok", "completed"] for line in table)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vary", "value"], "error: --vary 'value': expected KEY=VALUE1,VALUE2,..., e.g. --vary model.name=gru,lstm"),
        (
            ["--vary", "valeu=1,2"],
            "error: job '1': unknown key 'valeu'; did you mean 'value'? (allowed: mode, seconds, value, trainer)",
        ),
        ([], "error: pass at least one --vary KEY=V1,V2,... (or list the jobs with --jobs FILE)"),
    ],
)
def test_mistakes_give_one_line(fake_site, cli, tmp_path: Path, args: list[str], message: str) -> None:
    site = fake_site("manytoy", MANY_TOY)
    proc = cli(
        ["run-many", "-p", "manytoy", *args, "--out", str(tmp_path / "o")],
        pythonpath=site,
        env={"MLCORE_PLUGINS": "manytoy"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == message
    assert not (tmp_path / "o" / "1").exists()


def test_a_job_named_like_the_results_file_is_refused(fake_site, cli, tmp_path: Path) -> None:
    site = fake_site("manytoy", MANY_TOY)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[[jobs]]\nname = "results.json"\nplugin = "manytoy"\n')
    proc = cli(
        ["run-many", "--jobs", str(jobs), "--out", str(tmp_path / "o")],
        pythonpath=site,
        env={"MLCORE_PLUGINS": "manytoy"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: job 'results.json' would write its run into {tmp_path / 'o' / 'results.json'}, "
        "run-many's results file; rename it"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_sigterm_stops_every_job_cleanly_and_the_same_command_resumes(fake_site, tmp_path: Path) -> None:
    site = fake_site("manytoy", MANY_TOY)
    out = tmp_path / "many"
    args = [sys.executable, "-m", "mlcore", "run-many", "-p", "manytoy", "--set", "mode='train'",
            "--set", "trainer.epochs=30", "--vary", "value=1,2", "--max-parallel", "2",
            "--threads", "2", "--no-progress", "--out", str(out)]  # fmt: skip
    parent = subprocess.Popen(
        args,
        env={**_env(site), "MANYTOY_EPOCH_SLEEP": "0.5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not all((out / n / "epoch_done").exists() for n in ("1", "2")):
            assert parent.poll() is None and time.monotonic() < deadline, parent.communicate()
            time.sleep(0.2)
        parent.send_signal(signal.SIGTERM)
        _stdout, stderr = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 130, stderr
    for name in ("1", "2"):
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        assert (out / name / "checkpoints" / "last.pt").is_file()
        stats = json.loads((out / name / "training_stats.json").read_text())
        assert 1 <= stats["epochs_run"] < 30
    rows = json.loads((out / "results.json").read_text())["jobs"]
    assert [r["status"] for r in rows] == ["interrupted", "interrupted"]
    # the same command, now quick: the jobs continue from their last.pt instead of starting over
    proc = subprocess.run(args, env=_env(site), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("1", "2"):
        assert json.loads((out / name / "summary.json").read_text())["metrics"]["epochs_run"] == 30
        log = (out / name / "run.log").read_text()
        assert "resumed from" in log
