"""The Ray Tune engine: conditional keys with Ray's own sampling, trial rows, plots, a local search."""

from __future__ import annotations

import os
import types

import pytest

from mlcore.tuning.space import parse_search

from .conftest import PLUGIN, config_with, search_table

pytest.importorskip("ray.tune")
# one local Ray cluster at a time when the suite runs on several workers
pytestmark = pytest.mark.xdist_group("ray")

SPACE = {
    "trainer.scheduler": {"type": "categorical", "choices": ["cosine", "step"]},
    "trainer.step_size": {"type": "int", "low": 1, "high": 4, "when": {"trainer.scheduler": "step"}},
    "trainer.lr": {"type": "log", "low": 1e-4, "high": 1e-1},
}


def test_ray_sampling_drops_inactive_conditional_keys():
    from mlcore.tuning.ray_engine import active_params

    search = parse_search(search_table(space=SPACE))
    drawn = {"trainer.scheduler": "cosine", "trainer.step_size": 3, "trainer.lr": 0.01}
    assert active_params(search, drawn) == {"trainer.scheduler": "cosine", "trainer.lr": 0.01}
    drawn["trainer.scheduler"] = "step"
    assert active_params(search, drawn) == drawn


def test_ray_domains_sample_inside_the_space():
    from mlcore.tuning.ray_engine import ray_domain

    search = parse_search(search_table(space=SPACE))
    for param in search.params:
        domain = ray_domain(param)
        for _ in range(20):
            value = domain.sample()
            if param.type == "categorical":
                assert value in param.choices
            else:
                assert param.low <= value <= param.high


def _result(metrics, config, error=None):
    return types.SimpleNamespace(metrics=metrics, config=config, error=error)


def test_rows_from_results_and_the_plot_study():
    from mlcore.tuning.ray_engine import rows_from_results, study_from_rows

    search = parse_search(search_table(space=SPACE))
    cfg = {"trainer.scheduler": "cosine", "trainer.step_size": 2, "trainer.lr": 0.01}
    results = [
        _result({"objective": 0.3, "final": True, "epoch": 6, "run_dir": "trials/a"}, cfg),
        _result({"objective": 0.9, "final": False, "epoch": 1}, {**cfg, "trainer.scheduler": "step"}),
        _result({}, cfg, error=RuntimeError("boom")),
    ]
    rows = rows_from_results(results, search)
    assert [(r.state, r.value, r.epochs) for r in rows] == [
        ("complete", 0.3, 6),
        ("pruned", None, 1),
        ("fail", None, 0),
    ]
    assert rows[0].params == {"trainer.scheduler": "cosine", "trainer.lr": 0.01}
    assert rows[1].params["trainer.step_size"] == 2
    study = study_from_rows(rows, search)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    assert study.best_value == 0.3


@pytest.mark.slow
def test_a_local_ray_search_writes_the_same_outputs(tune_plugin, fake_site, monkeypatch):
    from mlcore import api

    site = fake_site("tunetoy", PLUGIN, module="tunetoy_plugin")  # Ray's worker processes discover it
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    out = tune_plugin / "ray"
    result = api.tune(config=config_with(trials=3), out=out, engine="ray", scheduler="asha", cpus_per_trial=1)
    assert len(result.trials) == 3 and result.count("complete") >= 1
    assert result.best_value == min(t.value for t in result.trials if t.state == "complete")
    assert (out / "trials.csv").read_text().count("\n") == 4
    assert (out / "plots" / "history.png").exists() and "Ray Tune" in (out / "report.md").read_text()
    rerun = api.run(config=result.best_config, out=tune_plugin / "again", progress=False)
    assert rerun.metrics["best_metric"] == pytest.approx(result.best_value, rel=1e-6)


@pytest.mark.slow
# 4 trials perturbed every epoch: fewer (2 trials, every 2 epochs) ran in 41 s but did not always see a
# continuation (Ray's asynchronous PBT only exploits trials that report while others are running).
# 204 s serial at load 3; 612 s on two workers at load 6, hence the longer timeout.
@pytest.mark.timeout(1200)
def test_pbt_continues_weaker_trials_from_stronger_weights(tune_plugin, fake_site, monkeypatch):
    from mlcore import api

    site = fake_site("tunetoy", PLUGIN, module="tunetoy_plugin")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    out = tune_plugin / "pbt"
    space = {"trainer.lr": {"type": "log", "low": 1e-3, "high": 0.3}}  # PBT: no shape-changing keys
    result = api.tune(
        config=config_with(trials=4, space=space), out=out, engine="ray", scheduler="pbt", cpus_per_trial=1
    )
    assert result.count("complete") == 4
    continued = sorted(p.name for p in (out / "trials").iterdir() if "-" in p.name.rsplit("_", 1)[-1])
    assert continued, "no trial was continued from another's checkpoint"
    assert "PBT" in (out / "report.md").read_text()


def test_under_pbt_a_lineage_that_trained_the_budget_is_complete():
    from mlcore.tuning.ray_engine import rows_from_results

    search = parse_search(search_table(space=SPACE))
    cfg = {"trainer.scheduler": "cosine", "trainer.lr": 0.01}
    results = [
        _result({"objective": 0.4, "final": False, "epoch": 6}, cfg),  # stopped by Ray at the budget
        _result({"objective": 0.9, "final": False, "epoch": 3}, cfg),  # stopped early
    ]
    assert [(r.state, r.value) for r in rows_from_results(results, search, budget=6)] == [
        ("complete", 0.4),
        ("pruned", None),
    ]
    assert [r.state for r in rows_from_results(results, search)] == ["pruned", "pruned"]
