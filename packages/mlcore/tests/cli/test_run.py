"""``mlcore run`` end to end through a real entry-point plugin, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tomllib

from ..test_api import TOY


def _toy_site(fake_site):
    return fake_site(
        "toy",
        TOY.replace("toy_mlcore_plugin:", "toy_plugin:")
        .replace(
            "class Plugin:\n    @staticmethod\n    @hookimpl\n    def register_pipelines",
            "@hookimpl\ndef register_pipelines",
        )
        .replace("\n        return [\n            ComponentSpec", "\n    return [\n        ComponentSpec"),
    )


def test_run_dry_run_and_reproduce(fake_site, cli, tmp_path):
    site = _toy_site(fake_site)
    dry = cli(["run", "--plugin", "toy", "--profile", "full", "--set", "steps=2", "--dry-run"], pythonpath=site)
    assert dry.returncode == 0, dry.stderr
    doc = tomllib.loads(dry.stdout)
    assert doc["steps"] == 2 and doc["section"]["size"] == 50 and doc["run"]["profile"] == "full"

    out = tmp_path / "r"
    res = cli(["run", "--plugin", "toy", "--out", str(out), "--seed", "3", "--no-progress"], pythonpath=site)
    assert res.returncode == 0, res.stderr
    assert f"run directory: {out}" in res.stdout
    assert json.loads((out / "summary.json").read_text())["metrics"]["score"] == 4
    resumed = cli(["run", "--resume", str(out)], pythonpath=site)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "run.log").read_text().count("running toy/toy") == 2


def test_user_errors_exit_2_with_one_line(fake_site, cli, tmp_path):
    site = _toy_site(fake_site)
    cases = [
        (
            ["run", "--plugin", "toy", "--set", "section.size=0"],
            "error: section.size=0 is out of range (allowed: [1, 100])",
        ),
        (["run", "--plugin", "toy", "--set", "bogus"], "error: --set 'bogus': expected KEY=VALUE"),
        (["run", "--plugin", "toy", "--config", str(tmp_path / "nope.toml")], "error: config file not found:"),
        (["run"], "error: pass --plugin NAME"),
        (["run", "--plugin", "toy", "--profile", "huge"], "error: profile='huge' is not allowed"),
        (["run", "--resume", str(tmp_path)], "error: "),
    ]
    for args, start in cases:
        res = cli(args, pythonpath=site, env={"MLCORE_PLUGINS": "toy"})
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith(start), (args, res.stderr)
        assert "Traceback" not in res.stderr


def _popen(args, site):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env["MLCORE_PLUGINS"] = "toy"
    return subprocess.Popen(
        [sys.executable, "-m", "mlcore", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _one_error_line(stderr):
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith(("running ", "resuming "))]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("second", [["--set", "sleep=3.0"], ["--set", "sleep=3.0", "--set", "steps=2"]])
def test_two_runs_started_together_into_one_dir(fake_site, tmp_path, second):
    site = _toy_site(fake_site)
    out = tmp_path / "r"
    common = ["run", "--plugin", "toy", "--out", str(out), "--no-progress"]
    procs = [_popen([*common, "--set", "sleep=3.0"], site), _popen([*common, *second], site)]
    results = [(p.pid, *p.communicate(timeout=120), p.returncode) for p in procs]
    winners = [r for r in results if r[3] == 0]
    losers = [r for r in results if r[3] != 0]
    assert len(winners) == 1 and len(losers) == 1, results
    winner_pid, loser_err = winners[0][0], losers[0][2]
    assert _one_error_line(loser_err) == (
        f"error: {out}: another run (pid {winner_pid}) is using this run directory; "
        "wait for it to finish or pick another --out"
    )
    # the directory describes the winner's run only
    summary = json.loads((out / "summary.json").read_text())
    saved = tomllib.loads((out / "config.toml").read_text())
    assert summary["metrics"]["score"] == saved["steps"] * saved["section"]["size"]
    assert (out / "run.log").read_text().count("running toy/toy") == 1


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_run_prints_resume_command_exit_130(fake_site, tmp_path, sig):
    site = _toy_site(fake_site)
    out = tmp_path / "r"
    proc = _popen(["run", "--plugin", "toy", "--out", str(out), "--set", "sleep=60.0", "--no-progress"], site)
    deadline = time.monotonic() + 60
    while not (out / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert _one_error_line(stderr) == (
        f"{out}: interrupted by {sig.name}; the last checkpoint is kept, resume with `mlcore run --resume {out}`"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == sig.name
    assert not (out / "metrics.json").exists() and not (out / "toy.json").exists()


def test_bad_run_directories_fail_in_one_line(fake_site, cli, tmp_path):
    site = _toy_site(fake_site)
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["--out", ""], "error: --out '': the run directory must be a non-empty path"),
        (["--out", str(afile)], f"error: {afile}: exists and is not a directory; pick another --out"),
        (["--out", str(afile / "run")], f"error: {afile / 'run'}: cannot create the run directory (Not a directory)"),
    ]
    for args, line in cases:
        res = cli(["run", "--plugin", "toy", *args], pythonpath=site)
        assert res.returncode != 0 and _one_error_line(res.stderr) == line, (args, res.stderr)


def _small_disk(tmp_path):
    """A 256 KiB tmpfs when this process may mount one, else None."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.name != "posix" or os.geteuid() != 0:
        return None
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    return disk if res.returncode == 0 else None


def test_full_disk_fails_in_one_line(fake_site, tmp_path):
    site = _toy_site(fake_site)
    disk = _small_disk(tmp_path)
    args = ["run", "--plugin", "toy", "--set", "blob=1000000", "--no-progress"]
    try:
        if disk is not None:
            out = disk / "r"
            proc = _popen([*args, "--out", str(out)], site)
            _, stderr = proc.communicate(timeout=120)
        else:  # no tmpfs: a file size limit makes the big write fail the same way (EFBIG)
            import resource

            out = tmp_path / "r"
            code = (
                "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                "resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024)); "
                "from mlcore.cli.main import main; sys.exit(main(sys.argv[1:]))"
            )
            env = {**os.environ, "PYTHONPATH": str(site), "MLCORE_PLUGINS": "toy"}
            proc = subprocess.Popen(
                [sys.executable, "-c", code, *args, "--out", str(out)], stderr=subprocess.PIPE, text=True, env=env
            )
            _, stderr = proc.communicate(timeout=120)
            assert resource  # imported for the child's benefit only
        assert proc.returncode == 1, stderr
        line = _one_error_line(stderr)
        assert line.startswith(f"error: {out}") and ("No space left on device" in line or "too large" in line), line
        assert not list(out.glob(".*.tmp"))  # the failed atomic write cleaned up after itself
    finally:
        if disk is not None:
            subprocess.run(["umount", str(disk)], check=True)
