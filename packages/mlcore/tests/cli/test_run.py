"""``mlcore run`` end to end through a real entry-point plugin, in a subprocess."""

from __future__ import annotations

import json

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
