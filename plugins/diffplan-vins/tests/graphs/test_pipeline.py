"""The ``graph-single`` pipeline: a normal run directory, evaluate, reproducibility and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mlcore.api import evaluate, resolve, run
from mlcore.errors import CheckpointError, ConfigError
from mlcore_diffplan_vins.graphs.pipeline import GraphSingleConfig, GraphSinglePlanner, resolve_graph_model

TINY = [
    "dataset.size=7",
    "dataset.num=16",
    "model.k=6",
    "model.hidden_channels=8",
    "model.q_channels=4",
    "trainer.epochs=2",
    "trainer.batch_size=4",
    "trainer.plot=false",
    "trainer.progress=false",
]


def _run(tmp: Path, *extra: str, seed: int = 0):  # type: ignore[no-untyped-def]
    return run("diffplan-vins", pipeline="graph-single", overrides=[*TINY, *extra], out=tmp, seed=seed, progress=False)


def test_published_names_resolve() -> None:
    assert [resolve_graph_model(n) for n in ("MP-VIN", "Sym-MP-VIN", "GAT-VIN", "GCN-VIN-v2")] == [
        "mp-vin",
        "sym-mp-vin",
        "gat-vin",
        "gcn-vin-v2",
    ]
    assert GraphSinglePlanner(GraphSingleConfig(algorithm="Sym-MP-VIN")).config.model.name == "sym-mp-vin"
    with pytest.raises(ConfigError, match="algorithm: unknown graph planner 'VIN'"):
        GraphSinglePlanner(GraphSingleConfig(algorithm="VIN"))


def test_run_writes_a_normal_run_directory_and_evaluate_works(tmp_path: Path) -> None:
    result = _run(tmp_path / "a", "model.name=sym-mp-vin")
    out = tmp_path / "a"
    for name in ("config.toml", "checkpoints/best.pt", "metrics.json", "report.md"):
        assert (out / name).is_file(), name
    assert 'name = "sym-mp-vin"' in (out / "config.toml").read_text()
    m = result.metrics
    assert 0.0 <= m["opt"] <= m["succ"] <= 1.0 and m["optimal_opt"] == 1.0
    report = (out / "report.md").read_text()
    assert "sym-mp-vin on maze-graphs" in report and "greedy by Euclidean distance" in report
    again = evaluate(out / "checkpoints" / "best.pt", out_dir=tmp_path / "ev")
    assert again["opt"] == pytest.approx(m["opt"]) and again["action_accuracy"] == pytest.approx(m["action_accuracy"])
    from mlcore.training.checkpoint import build_model

    assert type(build_model(out / "checkpoints" / "best.pt", expect="sym-mp-vin")).__name__ == "SymMPVIN"
    with pytest.raises(CheckpointError, match=r"holds model 'sym-mp-vin'.*not 'mp-vin'"):
        build_model(out / "checkpoints" / "best.pt", expect="mp-vin")


def test_continuous_run_links_model_and_loss(tmp_path: Path) -> None:
    result = _run(tmp_path / "c", "model.name=sym-mp-vin", "dataset.continuous=true")
    assert 0.0 <= result.metrics["angular_error_deg"] <= 180.0
    ckpt = torch.load(tmp_path / "c" / "checkpoints" / "best.pt", weights_only=False)
    text = json.dumps(ckpt["meta"], default=str)
    assert '"cont_action": true' in text and '"continuous": true' in text


def test_same_seed_same_weights_and_metrics(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", seed=3)
    b = _run(tmp_path / "b", seed=3)
    keep = lambda m: {k: v for k, v in m.items() if "seconds" not in k}  # noqa: E731
    assert keep(a.metrics) == keep(b.metrics)
    wa = torch.load(tmp_path / "a" / "checkpoints" / "best.pt", weights_only=False)["model"]
    wb = torch.load(tmp_path / "b" / "checkpoints" / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    _run(tmp_path / "c", seed=4)
    wc = torch.load(tmp_path / "c" / "checkpoints" / "best.pt", weights_only=False)["model"]
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dataset\.continuous=true needs a continuous-action head.*'gat-vin'"):
        _run(tmp_path / "g", "model.name=gat-vin", "dataset.continuous=true")
    assert not (tmp_path / "g" / "config.toml").exists()
    with pytest.raises(ConfigError, match=r"model\.name='vin' is not a graph planner"):
        _run(tmp_path / "v", "model.name=vin")
    with pytest.raises(ConfigError, match=r"model\.k=0"):
        resolve("diffplan-vins", pipeline="graph-single", overrides=["model.k=0"])
    with pytest.raises(ConfigError, match=r"model\.cont_action=True contradicts the data"):
        _run(tmp_path / "x", "model.cont_action=true")


def test_geometric_graphs_run(tmp_path: Path) -> None:
    result = run(
        "diffplan-vins",
        pipeline="graph-single",
        overrides=[
            "dataset.name=geometric-graphs",
            "dataset.nodes=20",
            "dataset.num=16",
            "dataset.degree=5",
            *TINY[2:],
        ],
        out=tmp_path / "geo",
        progress=False,
    )
    assert 0.0 <= result.metrics["succ"] <= 1.0
    ckpt = torch.load(tmp_path / "geo" / "checkpoints" / "best.pt", weights_only=False)
    assert '"max_degree": 5' in json.dumps(ckpt["meta"], default=str)
