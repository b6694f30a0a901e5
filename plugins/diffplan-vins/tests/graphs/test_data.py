"""The graph data modules: items, batches, dimensions, files, seeds and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mlcore.errors import ConfigError, DataError
from mlcore_diffplan_vins.graphs.config import GeometricGraphsConfig, MazeGraphsConfig
from mlcore_diffplan_vins.graphs.data import GeometricGraphs, MazeGraphs, collate_graphs


def test_items_are_graphs_with_slot_targets() -> None:
    data = MazeGraphs(MazeGraphsConfig(size=7, num=10)).prepare()
    graph, target = data.train_set()[0]
    assert graph.x.shape == (49, 2) and graph.pos.shape == (49, 2) and target.shape == (49, 4)
    g = data.graphs_of("train").subset([0])
    assert torch.equal(target, torch.from_numpy(g.optimal.astype(np.float32)))
    src, dst = graph.edge_index
    assert torch.equal(dst, torch.from_numpy(g.nbr[src.numpy(), graph.slot.numpy()]))  # edge = (node, slot's neighbour)
    assert graph.x[:, 0].sum() == 1 and int(graph.x[:, 0].argmax()) == int(g.goals[0])
    assert data.dimensions() == {"max_degree": 4, "cont_action": False}


def test_continuous_targets_are_unit_directions() -> None:
    data = MazeGraphs(MazeGraphsConfig(size=7, num=10, continuous=True)).prepare()
    _, target = data.train_set()[0]
    norms = target.norm(dim=1)
    assert target.shape == (49, 2) and set(norms.unique().tolist()) <= {0.0, 1.0}
    assert data.dimensions()["cont_action"] is True


def test_batches_offset_the_edges() -> None:
    data = GeometricGraphs(GeometricGraphsConfig(nodes=20, num=10, degree=4)).prepare()
    items = [data.train_set()[i] for i in range(3)]
    batch, targets = collate_graphs(items)
    assert batch.num_graphs == 3 and batch.x.shape[0] == 60 and targets.shape == (60, 4)
    assert torch.equal(batch.edge_index[:, 80:160], items[1][0].edge_index + 20)


def test_same_seed_same_data(tmp_path: Path) -> None:
    a = GeometricGraphs(GeometricGraphsConfig(nodes=20, num=10, seed=5)).prepare()
    b = GeometricGraphs(GeometricGraphsConfig(nodes=20, num=10, seed=5)).prepare()
    assert np.array_equal(a.graphs.pos, b.graphs.pos) and np.array_equal(a.split_of, b.split_of)  # type: ignore[union-attr]


def test_generate_and_read_back(tmp_path: Path) -> None:
    data = MazeGraphs(MazeGraphsConfig(size=7, num=10, seed=2))
    (path,) = data.generate(tmp_path)
    assert path.name == "maze-graphs_m7_4abs_n10_seed2.pth"
    back = MazeGraphs(MazeGraphsConfig(path=str(path), continuous=True)).prepare()
    assert np.array_equal(back.graphs.optimal, data.graphs.optimal)  # type: ignore[union-attr]
    assert back.train_set()[0][1].shape[1] == 2


def test_missing_file_names_the_generate_command(tmp_path: Path) -> None:
    cfg = MazeGraphsConfig(size=15, num=1000, path=str(tmp_path / "x.pth"))
    with pytest.raises(
        DataError, match=r"x\.pth \(create it with `mlcore data generate maze-graphs --size 15 --num 1000"
    ):
        MazeGraphs(cfg).prepare()


def test_impossible_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="dataset: could only generate"):
        GeometricGraphs(GeometricGraphsConfig(nodes=10, num=5, obstacles=40, obstacle_radius=5.0)).prepare()


def test_out_of_range_fields_name_the_field() -> None:
    with pytest.raises(ValueError, match="degree"):
        GeometricGraphsConfig(degree=0)
    with pytest.raises(ValueError, match="size"):
        MazeGraphsConfig(size=2)


def test_cli_generates_a_file(tmp_path: Path) -> None:
    from mlcore.cli.main import main

    code = main(["data", "generate", "maze-graphs", "--size", "7", "--num", "10", "--out", str(tmp_path)])
    assert code == 0
    back = MazeGraphs(MazeGraphsConfig(path=str(tmp_path / "maze-graphs_m7_4abs_n10_seed0.pth"))).prepare()
    assert len(back.graphs) == 10  # type: ignore[arg-type]
