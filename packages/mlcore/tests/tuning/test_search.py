"""``mlcore.api.tune`` with Optuna, end to end on the toy plugin: pruning, resume, best config, outputs."""

from __future__ import annotations

import csv
import json

import pytest

from mlcore import api
from mlcore.errors import ConfigError
from mlcore.tuning.search import trial_threads

from .conftest import config_with

pytest.importorskip("optuna")


def _tune(out, **search):
    return api.tune(config=config_with(**search), out=out)


def test_pruning_prunes_and_saves_epochs(tune_plugin):
    pruned = _tune(tune_plugin / "p", pruner="median")
    full = _tune(tune_plugin / "n", pruner="none")
    assert full.count("pruned") == 0 and full.epochs == 6 * 6  # every trial ran all of trainer.epochs
    assert pruned.count("pruned") >= 1
    assert all(t.epochs < 6 for t in pruned.trials if t.state == "pruned")
    assert pruned.epochs < full.epochs
    # the same seeded sampler draws the same configs: the trials that completed match the unpruned ones
    by_number = {t.number: t for t in full.trials}
    for t in pruned.trials:
        if t.state == "complete":
            assert t.params == by_number[t.number].params
            assert t.value == pytest.approx(by_number[t.number].value, rel=1e-6)


def test_outputs_and_best_config_reproduces(tune_plugin):
    out = tune_plugin / "study"
    result = _tune(out, trials=4, pruner="none")
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == [0, 1, 2, 3]
    assert set(rows[0]) >= {"number", "state", "best_metric", "epochs", "trainer.lr", "model.hidden", "run_dir"}
    values = [float(r["best_metric"]) for r in rows]
    assert result.best_value == min(values)
    assert json.loads((out / "best.json").read_text())["value"] == result.best_value
    for name in ("history", "importances", "parallel_coordinates", "slice", "contour"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000, name
    report = (out / "report.md").read_text()
    assert "![contour](plots/contour.png)" in report and f"**#{result.best_trial}**" in report
    # `mlcore run --config best_config.toml` gives the same metric
    rerun = api.run(config=result.best_config, out=tune_plugin / "again", progress=False)
    assert rerun.metrics["best_metric"] == pytest.approx(result.best_value, rel=1e-6)


def test_resume_keeps_finished_trials_and_retries_the_killed_one(tune_plugin):
    import optuna

    from mlcore.tuning.optuna_engine import load_study

    out = tune_plugin / "study"
    first = _tune(out, trials=3, pruner="none")
    stamps = {t.number: (out / t.run_dir / "metrics.json").stat().st_mtime_ns for t in first.trials}
    # a trial that was running when the process was killed: left RUNNING in the database
    from mlcore.tuning.space import parse_search

    from .conftest import search_table

    study = load_study(out, parse_search(search_table(trials=3, pruner="none")))
    killed = study.ask({"trainer.lr": optuna.distributions.FloatDistribution(1e-4, 0.3, log=True)})
    killed_lr = killed.params["trainer.lr"]
    second = _tune(out, trials=5, pruner="none")
    states = {t.number: t.state for t in second.trials}
    assert states[killed.number] == "fail"
    assert sum(s == "complete" for s in states.values()) == 5
    for number, stamp in stamps.items():  # finished trials were not run again
        assert (out / f"trials/{number:04d}/metrics.json").stat().st_mtime_ns == stamp
    retried = [t for t in second.trials if t.number > killed.number]
    assert retried[0].params["trainer.lr"] == killed_lr  # the killed trial's params were tried first
    # a third call with the same trials has nothing left to do
    third = _tune(out, trials=5, pruner="none")
    assert len(third.trials) == len(second.trials)


def test_resume_refuses_another_search_in_the_same_directory(tune_plugin):
    _tune(tune_plugin / "s", trials=1, pruner="none")
    with pytest.raises(ConfigError, match="holds a study with another search"):
        _tune(tune_plugin / "s", trials=1, pruner="none", sampler="tpe")


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"trainer.lrr": {"type": "log", "low": 1e-3, "high": 1e-1}}, "search.space.trainer.lrr: "),
        ({"model.hidden": {"type": "categorical", "choices": ["big"]}}, "search.space.model.hidden: "),
    ],
)
def test_a_key_the_pipeline_does_not_have_fails_before_any_trial(tune_plugin, space, message):
    with pytest.raises(ConfigError, match=message) as err:
        _tune(tune_plugin / "bad", space=space)
    assert "\n" not in str(err.value)
    assert not (tune_plugin / "bad" / "trials").exists()


def test_an_unknown_metric_is_named(tune_plugin):
    with pytest.raises(ConfigError, match=r"search.metric='val_acc': the run reported no such number .*best_metric"):
        _tune(tune_plugin / "m", metric="val_acc", trials=1)


def test_a_config_without_search_is_refused(tune_plugin):
    with pytest.raises(ConfigError, match=r"no \[search\] table"):
        api.tune(config={"run": {"plugin": "mlcore", "pipeline": "train"}}, out=tune_plugin / "x")


def test_set_edits_the_search_table(tune_plugin):
    result = api.tune(config=config_with(pruner="none"), overrides=["search.trials=2"], out=tune_plugin / "t")
    assert len(result.trials) == 2


@pytest.mark.parametrize(
    ("threads", "run_threads", "jobs", "expected"),
    [(None, 0, 1, None), (4, 0, 2, 2), (None, 6, 3, 2), (1, 0, 2, 1), (3, 0, 2, 1)],
)
def test_parallel_workers_divide_the_thread_setting(threads, run_threads, jobs, expected):
    assert trial_threads(threads, {"run": {"threads": run_threads}}, jobs) == expected


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tune_plugin, monkeypatch):
    from mlcore.errors import MlcoreError

    real_run = api.run

    def diverges_when_narrow(*args, **kwargs):
        if "model.hidden=4" in kwargs["overrides"]:
            raise MlcoreError("training diverged: train_loss is nan at epoch 2 (lower trainer.lr)")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(api, "run", diverges_when_narrow)
    out = tune_plugin / "study"
    result = _tune(out, trials=4, pruner="none")
    failed = [t for t in result.trials if t.state == "fail"]
    complete = [t for t in result.trials if t.state == "complete"]
    assert failed and all(t.params["model.hidden"] == 4 for t in failed)
    assert len(complete) == 4 - len(failed) and all(t.params["model.hidden"] == 16 for t in complete)
    assert result.best_trial in {t.number for t in complete}
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert sorted(r["state"] for r in rows) == sorted(t.state for t in result.trials)

    monkeypatch.setattr(api, "run", lambda *a, **k: diverges_when_narrow(*a, **{**k, "overrides": ["model.hidden=4"]}))
    with pytest.raises(MlcoreError, match=r"^every trial failed \(3\); the first: training diverged: train_loss"):
        _tune(tune_plugin / "all-fail", trials=3, pruner="none")


def test_a_wrong_metric_still_stops_the_study_at_the_first_trial(tune_plugin):
    with pytest.raises(ConfigError, match=r"search\.metric='nosuch'"):
        _tune(tune_plugin / "m", trials=3, pruner="none", metric="nosuch")
    assert len(list((tune_plugin / "m" / "trials").iterdir())) == 1
