"""MP-VIN and Sym-MP-VIN: shapes, value iteration, the D4 symmetry (numerically) and learning."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch

from mlcore.errors import DataError
from mlcore_diffplan_vins.graphs.config import GraphActionLossConfig, MPVINConfig, SymMPVINConfig
from mlcore_diffplan_vins.graphs.data import collate_graphs, graph_items
from mlcore_diffplan_vins.graphs.loss import GraphActionLoss
from mlcore_diffplan_vins.graphs.models import MPVIN, SymMPVIN
from mlcore_diffplan_vins.graphs.models.base import EMPTY_LOGIT

#: The 8 elements of D4 as 2x2 matrices acting on (x, y): 4 rotations, each with and without a reflection.
D4 = [
    torch.tensor(
        np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).round() @ np.diag([1, s]), dtype=torch.float32
    )
    for a, s in itertools.product(np.arange(4) * np.pi / 2, (1, -1))
]


def _batch(graphs: Any, continuous: bool = False, n: int = 4) -> tuple[Any, torch.Tensor]:
    return collate_graphs(graph_items(graphs.subset(slice(0, n)), continuous))


def _transformed(batch: Any, g: torch.Tensor) -> Any:
    out = batch.clone()
    out.pos = batch.pos @ g.T
    return out


def test_d4_has_eight_distinct_orthogonal_elements() -> None:
    assert len({tuple(m.flatten().tolist()) for m in D4}) == 8
    for m in D4:
        assert torch.allclose(m @ m.T, torch.eye(2))


@pytest.mark.parametrize("cont", [False, True])
def test_sym_mp_vin_is_d4_symmetric(maze_graphs_9: Any, geo_graphs: Any, cont: bool) -> None:
    torch.manual_seed(0)
    for graphs, degree in ((maze_graphs_9, 4), (geo_graphs, 5)):
        model = SymMPVIN(SymMPVINConfig(k=10, hidden_channels=16, q_channels=4, max_degree=degree, cont_action=cont))
        model.eval()
        batch, _ = _batch(graphs, cont)
        with torch.no_grad():
            base = model(batch)
            base_v = model.last_values
            assert base_v is not None and base_v.abs().max() > 0  # the values are not trivially zero
            for g in D4:
                out = model(_transformed(batch, g))
                expect = base @ g.T if cont else base  # directions turn with the graph; slot logits are invariant
                assert (out - expect).abs().max().item() < 1e-5
                assert (model.last_values - base_v).abs().max().item() < 1e-5  # type: ignore[operator]


def test_mp_vin_is_not_symmetric(maze_graphs_9: Any) -> None:
    """The symmetry test can fail: MP-VIN sees raw offsets, so a rotation changes its outputs."""
    torch.manual_seed(0)
    model = MPVIN(MPVINConfig(k=10, hidden_channels=16, q_channels=4)).eval()
    batch, _ = _batch(maze_graphs_9)
    with torch.no_grad():
        err = max((model(_transformed(batch, g)) - model(batch)).abs().max().item() for g in D4[1:])
    assert err > 1e-3


def test_sym_mp_vin_policy_without_equiv_head_is_not_equivariant(maze_graphs_9: Any) -> None:
    torch.manual_seed(0)
    cfg = SymMPVINConfig(k=6, hidden_channels=16, q_channels=4, cont_action=True, equiv_policy=False)
    model = SymMPVIN(cfg).eval()
    batch, _ = _batch(maze_graphs_9, True)
    with torch.no_grad():
        base = model(batch)
        out = model(_transformed(batch, D4[2]))
    assert (out - base @ D4[2].T).abs().max().item() > 1e-3


def test_output_shapes_and_empty_slots(maze_graphs_9: Any) -> None:
    batch, targets = _batch(maze_graphs_9)
    out = MPVIN(MPVINConfig(k=3)).eval()(batch)
    assert out.shape == targets.shape
    g = maze_graphs_9.subset(slice(0, 4))
    assert (out[torch.from_numpy(g.nbr < 0)] == EMPTY_LOGIT).all()
    assert (out[torch.from_numpy(g.nbr >= 0)] > EMPTY_LOGIT / 2).all()


def test_value_iteration_carries_information_k_edges(maze_graphs_9: Any) -> None:
    """With K steps a node's value depends on the goal only if the goal is within K moves."""
    torch.manual_seed(0)
    model = SymMPVIN(SymMPVINConfig(k=3, hidden_channels=8, q_channels=2)).eval()
    g = maze_graphs_9.subset([0])
    batch, _ = _batch(g, n=1)
    with torch.no_grad():
        model(batch)
        v0 = model.last_values.clone()  # type: ignore[union-attr]
        moved = batch.clone()
        moved.x = batch.x.clone()
        moved.x[:, 0] = 0.0  # remove the goal
        model(moved)
        v1 = model.last_values  # type: ignore[union-attr]
    changed = (v0 - v1).abs() > 1e-7
    # messages also pass through obstacles, so "far" is counted in lattice hops (Manhattan distance):
    # after K backups on top of a one-hop encoder, nothing beyond K + 1 hops can see the goal
    hops = np.abs(g.pos - g.pos[g.goals[0]]).sum(axis=1)
    assert not changed[torch.from_numpy(hops > 4)].any()
    assert changed[torch.from_numpy(hops <= 4)].any()


def test_mp_vin_learns(maze_graphs_9: Any) -> None:
    torch.manual_seed(0)
    model = MPVIN(MPVINConfig(k=12, hidden_channels=16, q_channels=4))
    batch, targets = _batch(maze_graphs_9, n=8)
    loss_fn = GraphActionLoss()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn(model(batch), targets)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_continuous_heads_learn(maze_graphs_9: Any) -> None:
    for equiv in (True, False):
        torch.manual_seed(0)
        model = SymMPVIN(SymMPVINConfig(k=12, hidden_channels=16, q_channels=4, cont_action=True, equiv_policy=equiv))
        batch, targets = _batch(maze_graphs_9, True, n=8)
        loss_fn = GraphActionLoss(GraphActionLossConfig(continuous=True))
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        first = loss_fn(model(batch), targets).item()
        for _ in range(60):
            opt.zero_grad()
            loss = loss_fn(model(batch), targets)
            loss.backward()
            opt.step()
        assert loss.item() < 0.85 * first, equiv


def test_bad_inputs_are_one_line_errors(maze_graphs_9: Any) -> None:
    batch, _ = _batch(maze_graphs_9)
    model = MPVIN(MPVINConfig(k=2))
    bad = batch.clone()
    bad.pos = batch.pos.clone()
    bad.pos[0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        model(bad)
    with pytest.raises(DataError, match=r"x must be \[nodes, 2\]"):
        wrong = batch.clone()
        wrong.x = batch.x[:, :1]
        model(wrong)
    with pytest.raises(DataError, match=r"model\.max_degree=2"):
        MPVIN(MPVINConfig(k=2, max_degree=2))(batch)
    with pytest.raises(DataError, match="has no tensor 'x'"):
        model(torch.zeros(3, 2))


def test_example_input_works() -> None:
    for degree in (4, 8, 6):
        model = MPVIN(MPVINConfig(k=2, max_degree=degree))
        out = model(model.example_input(3))
        assert out.shape == (3 * 49, degree) and torch.isfinite(out).all()
