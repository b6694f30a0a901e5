"""The greedy baseline and the optimal planner on the hand graph and on real maze graphs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from mlcore_diffplan_vins.graphs.baselines import greedy_choices, optimal_choices
from mlcore_diffplan_vins.graphs.build import GraphSet
from mlcore_diffplan_vins.graphs.metrics import graph_rollout

_spec = importlib.util.spec_from_file_location("graph_hand", Path(__file__).with_name("hand.py"))
assert _spec is not None and _spec.loader is not None
hand = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hand)


def test_greedy_picks_the_free_neighbour_nearest_the_goal() -> None:
    g = hand.hand_graph()
    c = greedy_choices(g)
    # node 1: 2 is 1 from the goal, 5 is sqrt(2.25) away, the obstacle 4 is excluded
    assert c.tolist() == [1, 2, 3, 2, 1, 2]


def test_optimal_planner_is_optimal_everywhere(maze_graphs_9: GraphSet, geo_graphs: GraphSet) -> None:
    for g in (maze_graphs_9, geo_graphs):
        r = graph_rollout(g, optimal_choices(g))
        assert r["opt"] == 1.0 and r["succ"] == 1.0 and r["action_accuracy"] == 1.0


def test_greedy_fails_in_mazes_but_not_always(maze_graphs_9: GraphSet) -> None:
    r = graph_rollout(maze_graphs_9, greedy_choices(maze_graphs_9))
    assert 0.05 < r["succ"] < 0.95 and r["opt"] <= r["succ"]
    assert np.isfinite(r["num_starts"])
