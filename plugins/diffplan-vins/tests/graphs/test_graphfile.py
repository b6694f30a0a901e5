"""The ``.pth`` graph files: safe to load, round-trip exactly, and fail in one line when wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mlcore.errors import DataError
from mlcore_diffplan_vins.graphs.build import GraphSet
from mlcore_diffplan_vins.graphs.graphfile import load_graphs, save_graphs


def _save(tmp_path: Path, g: GraphSet, **changes: object) -> Path:
    path = tmp_path / "g.pth"
    save_graphs(path, "geometric-graphs", g, np.zeros(len(g), dtype=np.int64), {"seed": 0})
    if changes:
        raw = torch.load(path, weights_only=True)
        raw.update(changes)
        torch.save(raw, path)
    return path


def test_roundtrip_is_exact_and_weights_only(tmp_path: Path, geo_graphs: GraphSet) -> None:
    path = _save(tmp_path, geo_graphs)
    raw = torch.load(path, weights_only=True)  # plain tensors and strings: no pickled objects
    assert raw["kind"] == "geometric-graphs"
    g, split, params = load_graphs(path, "geometric-graphs", "hint")
    assert params == {"seed": 0} and (split == 0).all()
    for name in ("node_ptr", "pos", "obstacle", "goals", "nbr", "distances", "optimal"):
        assert np.array_equal(getattr(g, name), getattr(geo_graphs, name)), name


def test_missing_file_names_it_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"graph file not found: .*nope\.pth \(create it with `mlcore data generate x`\)"
    ):
        load_graphs(tmp_path / "nope.pth", "maze-graphs", "mlcore data generate x")


def test_wrong_kind_and_garbage(tmp_path: Path, geo_graphs: GraphSet) -> None:
    path = _save(tmp_path, geo_graphs)
    with pytest.raises(DataError, match="holds 'geometric-graphs' graphs, not 'maze-graphs'"):
        load_graphs(path, "maze-graphs", "hint")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable graph file"):
        load_graphs(bad, "geometric-graphs", "hint")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: {"pos": torch.full((len(g.pos), 2), float("nan"))}, "pos contains NaN"),
        (lambda g: {"optimal": torch.zeros(len(g.pos), 3, dtype=torch.uint8)}, r"optimal must be \["),
        (lambda g: {"goals": torch.from_numpy(g.goals[::-1].copy())}, "goals and|distances are not 0"),
        (lambda g: {"nbr": torch.full((len(g.pos), g.num_slots), 10_000)}, "nbr holds a node index outside"),
        (lambda g: {"optimal": torch.zeros(len(g.pos), g.num_slots, dtype=torch.uint8)}, "optimal is not set exactly"),
        (lambda g: {"format_version": 9}, "format_version=9"),
    ],
)
def test_inconsistent_files_fail_naming_the_array(tmp_path: Path, geo_graphs: GraphSet, change, message) -> None:  # type: ignore[no-untyped-def]
    path = _save(tmp_path, geo_graphs, **change(geo_graphs))
    with pytest.raises(DataError, match=message):
        load_graphs(path, "geometric-graphs", "hint")


def test_a_missing_key_is_named(tmp_path: Path, geo_graphs: GraphSet) -> None:
    path = _save(tmp_path, geo_graphs)
    raw = torch.load(path, weights_only=True)
    del raw["distances"]
    torch.save(raw, path)
    with pytest.raises(DataError, match=r"missing key.*distances"):
        load_graphs(path, "geometric-graphs", "hint")
