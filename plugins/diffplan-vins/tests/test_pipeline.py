"""The pipelines: config errors in one line, model selection, reproducibility, and one end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
import torch

from mlcore.api import resolve, run
from mlcore.errors import CheckpointError, ConfigError
from mlcore_diffplan_vins.pipeline import SingleConfig, SinglePlanner, resolve_model_name

TINY = [
    "dataset.size=9",
    "dataset.num=40",
    "planner.k=6",
    "planner.hidden_channels=8",
    "planner.q_channels=6",
    "trainer.epochs=1",
    "trainer.plot=false",
    "trainer.progress=false",
    "generalisation.sizes=[11]",
    "generalisation.num=3",
    "plot_mazes=0",
    'models=["vin","cnn"]',
]


def test_published_names_resolve() -> None:
    assert resolve_model_name("VIN") == "vin"
    with pytest.raises(ConfigError, match=r"unknown planner 'NoSuch' \(registered: .*vin"):
        resolve_model_name("NoSuch")


def test_algorithm_selects_the_model() -> None:
    pipe = SinglePlanner(SingleConfig(algorithm="VIN"))
    assert pipe.config.model.name == "vin"
    with pytest.raises(ConfigError, match="algorithm: unknown planner"):
        SinglePlanner(SingleConfig(algorithm="vinn"))


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"planner.k=0 is out of range"):
        resolve("diffplan-vins", overrides=["planner.k=0"])
    with pytest.raises(ConfigError, match=r"dataset.actions"):
        resolve("diffplan-vins", overrides=["dataset.actions=5"])
    with pytest.raises(ConfigError, match=r"unknown planner 'resnet'"):
        run("diffplan-vins", overrides=[*TINY, 'models=["resnet"]'], out=tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "config.toml").exists()  # refused before anything was written


def test_same_seed_same_weights_and_metrics(tmp_path: Path) -> None:
    a = run("diffplan-vins", overrides=TINY, out=tmp_path / "a", seed=5, progress=False)
    b = run("diffplan-vins", overrides=TINY, out=tmp_path / "b", seed=5, progress=False)
    timing = [k for k in a.metrics if k.endswith("mazes_per_second")]
    assert timing and {k: v for k, v in a.metrics.items() if k not in timing} == {
        k: v for k, v in b.metrics.items() if k not in timing
    }
    for name in ("vin", "cnn"):
        wa = torch.load(tmp_path / "a" / "models" / name / "checkpoints" / "best.pt", weights_only=False)["model"]
        wb = torch.load(tmp_path / "b" / "models" / name / "checkpoints" / "best.pt", weights_only=False)["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = run("diffplan-vins", overrides=TINY, out=tmp_path / "c", seed=6, progress=False)
    assert c.metrics["vin_action_accuracy"] != a.metrics["vin_action_accuracy"]


def test_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    from mlcore.training.checkpoint import build_model

    run("diffplan-vins", overrides=[*TINY, 'models=["vin"]'], out=tmp_path / "a", progress=False)
    ckpt = tmp_path / "a" / "models" / "vin" / "checkpoints" / "best.pt"
    assert type(build_model(ckpt, expect="vin")).__name__ == "VIN"
    with pytest.raises(CheckpointError, match=r"holds model 'vin'.*not 'cnn'"):
        build_model(ckpt, expect="cnn")


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path: Path) -> None:
    result = run(
        "diffplan-vins",
        profile="quick",
        overrides=['models=["vin","cnn"]', "dataset.num=300", "trainer.epochs=3", "generalisation.num=10"],
        out=tmp_path / "q",
        progress=False,
    )
    report = (tmp_path / "q" / "report.md").read_text()
    assert "| vin |" in report and "greedy (baseline)" in report and "28×28 %Opt" in report
    assert (tmp_path / "q" / "plots" / "maze_0.png").stat().st_size > 1000
    results = json.loads((tmp_path / "q" / "results.json").read_text())
    assert set(results["models"]) == {"vin", "cnn", "greedy"}
    assert 0.0 <= result.metrics["vin_opt"] <= result.metrics["vin_succ"] <= 1.0
    # the planner learns something a 1-step greedy policy cannot: better action accuracy than chance
    assert result.metrics["vin_action_accuracy"] > 0.4


def test_model_overrides_apply_per_model_and_name_bad_keys() -> None:
    from mlcore_diffplan_vins.pipeline import ComparisonConfig, PlannerComparison, PlannerSettings

    cfg = ComparisonConfig(
        models=["VIN", "cnn"], planner=PlannerSettings(k=7), model_overrides={"vin": {"q_channels": 5}}
    )
    configs = PlannerComparison(cfg).model_configs()
    assert (configs["vin"].k, configs["vin"].q_channels, configs["cnn"].k) == (7, 5, 7)
    with pytest.raises(ConfigError, match=r"model_overrides.vin.width: 'vin' has no such field"):
        PlannerComparison(attrs.evolve(cfg, model_overrides={"vin": {"width": 3}})).model_configs()
    assert "gppn" not in PlannerComparison(attrs.evolve(cfg, model_overrides={"gppn": {"k": 3}})).model_configs()
    with pytest.raises(ConfigError, match=r"model_overrides.resnet: unknown planner 'resnet'"):
        PlannerComparison(attrs.evolve(cfg, model_overrides={"resnet": {"k": 3}})).model_configs()
    with pytest.raises(ConfigError, match=r"q_channels=0 is out of range"):
        PlannerComparison(attrs.evolve(cfg, model_overrides={"vin": {"q_channels": 0}})).model_configs()


@pytest.mark.parametrize("name", ["vin", "symvin", "de-vin", "de-symvin"])
def test_release_configs_mirror_the_research_commands(name: str) -> None:
    path = Path(__file__).parents[1] / "configs" / f"{name}_maze15.toml"
    resolved = resolve(config=path)
    cfg = SinglePlanner(resolved.config).config
    assert resolved.settings.seed == 42 and resolved.settings.pipeline == "single"
    assert cfg.model.name == name and cfg.notes
    t = cfg.trainer
    assert (t.epochs, t.batch_size, t.lr, t.optimizer, cfg.dataset.num, cfg.dataset.size) == (
        100,
        32,
        1e-3,
        "rmsprop",
        10000,
        15,
    )
    if "sym" in name:
        assert cfg.model.config.group == "d4"


def test_algorithm_keeps_the_model_settings_given_with_it() -> None:
    # `--set algorithm=SymVIN --set model.hidden_channels=8`: the setting lands on VIN's config first
    cfg = resolve("diffplan-vins", pipeline="single", overrides=["algorithm=SymVIN", "model.hidden_channels=8"]).config
    pipe = SinglePlanner(cfg)
    assert pipe.config.model.name == "symvin"
    assert pipe.config.model.config.hidden_channels == 8
    assert pipe.config.model.config.q_channels == 40  # SymVIN's own default, not VIN's


def test_algorithm_refuses_a_setting_the_planner_lacks() -> None:
    from mlcore_diffplan_vins.graphs.pipeline import GraphSingleConfig, GraphSinglePlanner

    cfg = resolve(
        "diffplan-vins", pipeline="graph-single", overrides=["algorithm=GAT-VIN", "model.equiv_policy=false"]
    ).config
    assert isinstance(cfg, GraphSingleConfig)
    with pytest.raises(ConfigError, match=r"algorithm: planner 'gat-vin' has no setting model\.equiv_policy"):
        GraphSinglePlanner(cfg)
