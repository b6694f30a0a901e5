"""Fixtures of the graph tests: small labelled graph sets."""

from __future__ import annotations

import pytest

from mlcore_diffplan_vins.graphs.build import GraphSet, geometric_graphs, maze_graphs
from mlcore_diffplan_vins.mazes import generate_mazes


@pytest.fixture(scope="session")
def maze_graphs_9() -> GraphSet:
    """12 labelled 9x9 maze graphs (4 moves)."""
    return maze_graphs(generate_mazes(12, size=9, num_actions=4, seed=0))


@pytest.fixture(scope="session")
def geo_graphs() -> GraphSet:
    """10 labelled random geometric graphs of 30 nodes."""
    return geometric_graphs(10, nodes=30, degree=5, obstacles=2, obstacle_radius=1.0, seed=0)
