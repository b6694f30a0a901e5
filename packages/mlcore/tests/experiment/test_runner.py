"""Running experiment files: caching by input hash, re-runs on change, resuming a failed stage, selection."""

from __future__ import annotations

import json
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
