"""The symmetry error helper: zero for Sym-MP-VIN, large for MP-VIN, and D4 is the right group."""

from __future__ import annotations

from typing import Any

import torch

from mlcore_diffplan_vins.graphs.config import MPVINConfig, SymMPVINConfig
from mlcore_diffplan_vins.graphs.data import collate_graphs, graph_items
from mlcore_diffplan_vins.graphs.models import MPVIN, SymMPVIN
from mlcore_diffplan_vins.graphs.symmetry import D4_MATRICES, d4_symmetry_error


def test_d4_matrices_form_the_group() -> None:
    keys = {tuple(m.flatten().tolist()) for m in D4_MATRICES}
    assert len(keys) == 8
    for a in D4_MATRICES:
        assert torch.equal(a @ a.T, torch.eye(2))
        for b in D4_MATRICES:
            assert tuple((a @ b).flatten().tolist()) in keys  # closed under composition


def test_errors_of_symmetric_and_plain_planners(maze_graphs_9: Any) -> None:
    torch.manual_seed(0)
    batch, _ = collate_graphs(graph_items(maze_graphs_9.subset(slice(0, 3)), False))
    sym = SymMPVIN(SymMPVINConfig(k=8, hidden_channels=12, q_channels=4))
    assert d4_symmetry_error(sym, batch, continuous=False) < 1e-5
    assert d4_symmetry_error(MPVIN(MPVINConfig(k=8, hidden_channels=12, q_channels=4)), batch, continuous=False) > 1e-3
    cont = SymMPVIN(SymMPVINConfig(k=8, hidden_channels=12, q_channels=4, cont_action=True))
    assert d4_symmetry_error(cont, batch, continuous=True) < 1e-5
