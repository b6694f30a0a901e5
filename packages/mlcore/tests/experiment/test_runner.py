"""Running experiment files: caching by input hash, re-runs on change, resuming a failed stage, selection."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlcore import api
from mlcore.errors import ConfigError, MlcoreError
from mlcore.experiment import experiment_status, run_experiment


def states(result) -> dict[str, str]:
    return {s.name: s.state for s in result.stages}


def checkpoint_mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.rglob("*.pt"))}


def test_second_run_skips_every_stage_without_training(experiment, monkeypatch):
    path = experiment()
    first = run_experiment(path)
    assert states(first) == dict.fromkeys(["train", "evaluate", "compare", "report"], "completed")
    out = first.out_dir
    assert sorted(p.name for p in (out / "train").iterdir() if p.is_dir()) == ["seed-0", "seed-1"]
    before = checkpoint_mtimes(out)

    def no_training(*args, **kwargs):
        raise AssertionError("a cached stage ran api.run")

    monkeypatch.setattr(api, "run", no_training)
    monkeypatch.setattr(api, "evaluate", no_training)
    second = run_experiment(path)
    assert states(second) == dict.fromkeys(["train", "evaluate", "compare", "report"], "cached")
    assert checkpoint_mtimes(out) == before
    assert second.outputs("evaluate")["metrics"] == first.outputs("evaluate")["metrics"]


def test_changed_input_reruns_that_stage_and_its_dependants_only(experiment):
    run_experiment(experiment(lr=0.01))
    # the report depends on evaluate and compare; changing the evaluation re-runs evaluate and report
    changed = run_experiment(experiment(lr=0.01, select="last"))
    assert states(changed) == {"train": "cached", "evaluate": "completed", "compare": "cached", "report": "completed"}
    # a train setting changes everything downstream of train
    again = run_experiment(experiment(lr=0.02, select="last"))
    assert states(again) == dict.fromkeys(["train", "evaluate", "compare", "report"], "completed")
    config = (again.out_dir / "train" / "seed-0" / "config.toml").read_text()
    assert "lr = 0.02" in config


def test_config_file_content_is_part_of_the_hash(experiment, tmp_path):
    path = experiment()
    run_experiment(path, until="train")
    train_toml = tmp_path / "train.toml"
    train_toml.write_text(train_toml.read_text().replace("hidden = 8", "hidden = 4"))
    status = experiment_status(path)
    assert states(status)["train"] == "stale"
    rerun = run_experiment(path, until="train")
    assert states(rerun)["train"] == "completed"


def test_status_reports_pending_completed_stale(experiment):
    path = experiment()
    assert set(states(experiment_status(path)).values()) == {"pending"}
    run_experiment(path, until="evaluate")
    assert states(experiment_status(path)) == {
        "train": "completed",
        "evaluate": "completed",
        "compare": "pending",
        "report": "pending",
    }
    path = experiment(lr=0.05)
    assert states(experiment_status(path)) == {
        "train": "stale",
        "evaluate": "stale",
        "compare": "pending",
        "report": "pending",
    }


def test_failed_stage_is_recorded_and_rerun_continues_from_it(experiment, monkeypatch):
    path = experiment()
    real_run = api.run
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(kwargs["seed"])
        if kwargs["seed"] == 1 and calls.count(1) == 1:
            raise MlcoreError("disk on fire")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(api, "run", flaky)
    with pytest.raises(MlcoreError, match="stage 'train' failed: disk on fire"):
        run_experiment(path)
    status = experiment_status(path)
    assert states(status)["train"] == "failed"
    assert status.stages[0].error == "disk on fire"
    result = run_experiment(path)
    assert result.ok
    assert calls == [0, 1, 1]  # seed 0 was not trained again


def test_force_reruns_a_cached_stage_and_its_dependants(experiment):
    path = experiment()
    run_experiment(path)
    forced = run_experiment(path, force=["compare"])
    assert states(forced) == {"train": "cached", "evaluate": "cached", "compare": "completed", "report": "completed"}


def test_best_selects_the_run_with_the_best_monitored_value(experiment):
    result = run_experiment(experiment(select="best"), until="evaluate")
    runs = result.outputs("train")["runs"]
    best = min(runs, key=lambda r: r["best_metric"])
    assert result.outputs("train")["best_run"] == best["dir"]
    assert result.outputs("evaluate")["checkpoints"] == [str(Path(best["dir"]) / "checkpoints" / "best.pt")]
    stats = [json.loads((Path(r["dir"]) / "training_stats.json").read_text())["best_metric"] for r in runs]
    assert best["best_metric"] == min(stats)
    assert runs[0]["best_metric"] != runs[1]["best_metric"]


def test_ensemble_of_one_equals_best_and_of_two_differs(experiment):
    best = run_experiment(experiment(select="best"), until="evaluate").outputs("evaluate")["metrics"]
    one = run_experiment(experiment(select="ensemble", top=1), until="evaluate").outputs("evaluate")["metrics"]
    assert one.pop("ensemble_size") == 1
    assert one == pytest.approx(best, rel=1e-6)
    two = run_experiment(experiment(select="ensemble", top=2), until="evaluate").outputs("evaluate")
    assert two["metrics"]["ensemble_size"] == 2 and len(two["checkpoints"]) == 2
    assert two["metrics"]["mse"] != pytest.approx(best["mse"], rel=1e-6)


def test_report_names_stages_and_metrics(experiment):
    result = run_experiment(experiment())
    report = Path(result.outputs("report")["report"]).read_text()
    assert "| train | train |" in report and "| evaluate | evaluate |" in report
    mse = result.outputs("evaluate")["metrics"]["mse"]
    assert f"| evaluate.mse | {mse:.6g} |" in report
    comparison = json.loads((result.out_dir / "compare" / "comparison.json").read_text())
    assert sorted(Path(r["run"]).name for r in comparison) == ["seed-0", "seed-1"]


def test_references_pass_outputs_between_stages(experiment, tmp_path):
    extra = """
[[stage]]
name = "echo"
kind = "api"
function = "compare"
args = {run_dirs = "${train.runs.0.dir}"}
"""
    path = experiment(extra=extra.replace('"${train.runs.0.dir}"', '["${train.runs.0.dir}"]'))
    result = run_experiment(path)
    rows = result.outputs("echo")["value"]
    assert [Path(r["run"]).name for r in rows] == ["seed-0"]


def test_bad_reference_names_the_stage_and_key(experiment):
    extra = '\n[[stage]]\nname = "x"\nkind = "api"\nfunction = "compare"\nargs = {run_dirs = ["${train.nope}"]}\n'
    path = experiment(extra=extra)
    with pytest.raises(ConfigError, match=r"stage 'x': \$\{train.nope\}: train has no 'nope'"):
        run_experiment(path)


def test_unknown_api_function_is_a_config_error(experiment):
    path = experiment(extra='\n[[stage]]\nname = "x"\nkind = "api"\nfunction = "nosuch"\n')
    with pytest.raises(ConfigError, match=r"mlcore\.api has no function 'nosuch' .*available: .*compare"):
        run_experiment(path)


def test_the_api_re_exports_the_experiment_functions():
    import mlcore.experiment

    assert api.run_experiment is mlcore.experiment.run_experiment
    assert api.experiment_status is mlcore.experiment.experiment_status
    with pytest.raises(AttributeError):
        api.no_such_function  # noqa: B018


def test_command_stage_runs_mlcore_and_fails_on_a_non_zero_exit(experiment):
    ok = experiment(extra='\n[[stage]]\nname = "listing"\nkind = "command"\nargs = ["list", "loss"]\n')
    result = run_experiment(ok, until="listing")
    assert result.outputs("listing")["command"] == ["mlcore", "list", "loss"]
    bad = experiment(extra='\n[[stage]]\nname = "listing"\nkind = "command"\nargs = ["list", "nosuchkind"]\n')
    with pytest.raises(MlcoreError, match=r"stage 'listing' failed: `mlcore list nosuchkind` exited with status [12]"):
        run_experiment(bad, until="listing")


def test_an_interrupted_stage_is_an_interrupt_with_the_command_that_continues(experiment, monkeypatch):
    from mlcore.cli.main import main
    from mlcore.errors import RunInterrupted

    path = experiment()
    real_run = api.run

    def stopped(*args, **kwargs):
        if kwargs["seed"] == 1:
            raise RunInterrupted("seed-1: interrupted by SIGTERM", run_dir="seed-1", signal_name="SIGTERM")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(api, "run", stopped)
    with pytest.raises(RunInterrupted) as info:
        run_experiment(path)
    assert info.value.exit_code == 130 and info.value.signal_name == "SIGTERM"
    assert str(info.value) == (
        f"{path}: stage 'train' interrupted by SIGTERM; the last checkpoint is kept, "
        f"continue with `mlcore pipeline run {path}` (finished stages are kept)"
    )
    assert main(["pipeline", "run", str(path)]) == 130  # the CLI: not "error: ... fix it", exit 130
    monkeypatch.setattr(api, "run", real_run)
    assert run_experiment(path).ok


def test_a_second_run_of_the_same_experiment_is_refused_while_one_runs(experiment):
    from mlcore.runs import RunLock

    path = experiment()
    out = path.parent / "out"
    out.mkdir()
    with RunLock(out), pytest.raises(MlcoreError) as info:
        run_experiment(path)
    assert str(info.value).startswith(f"{path}: another `mlcore pipeline run` (pid ")
    assert str(info.value).endswith(f"is running this experiment in {out}; wait for it to finish")
    assert not (out / "train").exists()  # nothing was written by the refused run
    assert run_experiment(path).ok  # the lock is released with its holder


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_a_command_stage_and_leaves_no_process_behind(fake_site, tmp_path):
    import os
    import signal
    import subprocess
    import time

    from ..cli.test_run import _toy_site

    site = _toy_site(fake_site)
    exp = tmp_path / "exp.toml"
    exp.write_text(
        '[experiment]\nout = "out"\n\n[[stage]]\nname = "long"\nkind = "command"\n'
        'args = ["run", "--plugin", "toy", "--set", "sleep=120", "--out", "long-run", "--no-progress"]\n'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    env.pop("MLCORE_PLUGINS", None)
    parent = subprocess.Popen(
        [sys.executable, "-m", "mlcore", "pipeline", "run", str(exp)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (tmp_path / "long-run" / "started").exists():
        time.sleep(0.2)
    children = [int(p) for p in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()]
    assert len(children) == 1, children
    parent.send_signal(signal.SIGTERM)  # to the experiment alone, as a scheduler or `timeout` does
    assert parent.wait(timeout=180) == 130
    assert "stage 'long' interrupted by SIGTERM" in parent.stderr.read()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _gone(children[0]):
        time.sleep(0.2)
    assert _gone(children[0]), "the command outlived the experiment"
    summary = json.loads((tmp_path / "long-run" / "summary.json").read_text())
    assert summary["status"] == "interrupted"  # it stopped cleanly, resumable


def _gone(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_file_a_command_stage_names_is_part_of_its_hash(tmp_path):
    from mlcore.experiment.runner import stage_hash
    from mlcore.experiment.spec import load_experiment

    search = tmp_path / "search.toml"
    search.write_text("[search]\ntrials = 4\n")
    exp_file = tmp_path / "exp.toml"
    exp_file.write_text(
        '[[stage]]\nname = "s"\nkind = "search"\nargs = ["--config", "search.toml", "--out", "${dir}"]\n'
        '[[stage]]\nname = "c"\nkind = "command"\nargs = ["run", "--config=search.toml", "--dry-run"]\n'
        '[[stage]]\nname = "plain"\nkind = "command"\nargs = ["list", "loss"]\n'
    )
    exp = load_experiment(exp_file)

    def hashes() -> list[str]:
        return [stage_hash(exp, stage, {}) for stage in exp.stages]

    before = hashes()
    search.write_text("[search]\ntrials = 40\n")  # the search changed: its stage is stale
    after = hashes()
    assert after[0] != before[0] and after[1] != before[1]
    assert after[2] == before[2]  # arguments that are not files change nothing
