"""The ``graph`` pipeline: model selection and overrides, and one end-to-end quick run (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from mlcore.api import run
from mlcore.errors import ConfigError
from mlcore.pipelines.sections import ComponentConfig
from mlcore_diffplan_vins.graphs.compare import GraphComparison, GraphComparisonConfig, GraphPlannerSettings
from mlcore_diffplan_vins.graphs.config import MazeGraphsConfig


def _cfg(**changes: object) -> GraphComparisonConfig:
    base = GraphComparisonConfig(dataset=ComponentConfig("maze-graphs", MazeGraphsConfig(size=7, num=10)))
    return attrs.evolve(base, **changes)


def test_settings_and_overrides_apply_per_model() -> None:
    cfg = _cfg(
        models=["MP-VIN", "gat-vin"],
        planner=GraphPlannerSettings(k=7, hidden_channels=9),
        model_overrides={"gat-vin": {"heads": 3}},
    )
    configs = GraphComparison(cfg).model_configs()
    assert list(configs) == ["mp-vin", "gat-vin"]
    assert configs["mp-vin"].k == 7 and configs["gat-vin"].hidden_channels == 9 and configs["gat-vin"].heads == 3
    assert configs["mp-vin"].max_degree == 4  # from the data
    with pytest.raises(ConfigError, match=r"model_overrides\.gat-vin\.width: 'gat-vin' has no such field"):
        GraphComparison(attrs.evolve(cfg, model_overrides={"gat-vin": {"width": 3}})).model_configs()
    with pytest.raises(ConfigError, match=r"models: 'mp-vin' is listed twice"):
        GraphComparison(attrs.evolve(cfg, models=["mp-vin", "MP-VIN"])).model_configs()
    with pytest.raises(ConfigError, match=r"unknown graph planner 'vin'"):
        GraphComparison(attrs.evolve(cfg, models=["vin"])).model_configs()


def test_continuous_data_refuses_planners_without_a_direction_head() -> None:
    cfg = _cfg(models=["gcn-vin-v2"])
    cfg = attrs.evolve(cfg, dataset=ComponentConfig("maze-graphs", MazeGraphsConfig(size=7, num=10, continuous=True)))
    with pytest.raises(ConfigError, match="needs a continuous-action head"):
        GraphComparison(cfg).model_configs()


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path: Path) -> None:
    result = run("diffplan-vins", pipeline="graph", profile="quick", out=tmp_path / "q", progress=False)
    out = tmp_path / "q"
    report = (out / "report.md").read_text()
    for name in ("mp-vin", "sym-mp-vin", "gat-vin", "gcn-vin-v2", "greedy (baseline)", "optimal (Dijkstra)"):
        assert f"| {name} |" in report, name
    assert "## Results" in report and "every reachable start node" in report
    assert (out / "plots" / "graph_0.png").stat().st_size > 1000
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"mp-vin", "sym-mp-vin", "gat-vin", "gcn-vin-v2", "greedy", "optimal"}
    assert result.metrics["optimal_opt"] == 1.0
    for name in ("mp-vin", "sym-mp-vin", "gat-vin", "gcn-vin-v2"):
        assert 0.0 <= result.metrics[f"{name}_opt"] <= result.metrics[f"{name}_succ"] <= 1.0
        assert (out / "models" / name / "checkpoints" / "best.pt").is_file()
    # every planner learned something: more first moves right than a uniform pick among ~3 free neighbours
    assert min(result.metrics[f"{n}_action_accuracy"] for n in ("mp-vin", "sym-mp-vin", "gcn-vin-v2")) > 0.4
