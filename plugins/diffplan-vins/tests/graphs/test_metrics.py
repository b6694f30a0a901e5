"""Rollout metrics equal hand computations on a graph small enough to follow by eye (see ``hand.py``)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from mlcore_diffplan_vins.graphs.build import GraphSet
from mlcore_diffplan_vins.graphs.metrics import (
    angular_errors,
    choices_from_directions,
    choices_from_logits,
    graph_rollout,
)

_spec = importlib.util.spec_from_file_location("graph_hand", Path(__file__).with_name("hand.py"))
assert _spec is not None and _spec.loader is not None
hand = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hand)

DETOUR = 2 * math.sqrt(1.25)


@pytest.fixture
def g() -> GraphSet:
    return hand.hand_graph()


def test_labels_of_the_hand_graph(g: GraphSet) -> None:
    assert g.distances[:4].tolist() == [3.0, 2.0, 1.0, 0.0]
    assert math.isinf(g.distances[4]) and g.distances[5] == pytest.approx(math.sqrt(1.25) + 1)
    assert g.optimal[1].tolist() == [0, 1, 0, 0] and g.optimal[5].tolist() == [0, 1, 0, 0]
    assert not g.optimal[3].any() and not g.optimal[4].any()


def test_detours_succeed_but_are_not_optimal(g: GraphSet) -> None:
    # 0 -> 1 -> 5 -> 2 -> 3: from 0 and 1 the detour via 5 reaches the goal at extra cost
    choices = np.array([1, 5, 3, -1, -1, 2])
    r = graph_rollout(g, choices)
    assert r["num_starts"] == 4  # nodes 0, 1, 2, 5 (not the goal, not the obstacle)
    assert r["succ"] == 1.0
    assert r["opt"] == 0.5  # only from 2 and 5
    assert r["action_accuracy"] == 0.75  # node 1's move to 5 is the one wrong choice
    assert r.optimal.tolist() == [False, False, True, False, False, True]
    assert 3 + DETOUR - 1 > 3  # the detour is really longer than the straight path


def test_moving_into_an_obstacle_leaves_the_agent_stuck(g: GraphSet) -> None:
    # were the agent let onto the obstacle (4), that node's choice would take it on to 2 and the goal
    choices = np.array([1, 4, 3, -1, 2, 2])
    r = graph_rollout(g, choices)
    assert r.reached.tolist() == [False, False, True, False, False, True]
    assert r["succ"] == 0.5 and r["opt"] == 0.5 and r["action_accuracy"] == 0.75


def test_a_loop_never_arrives(g: GraphSet) -> None:
    r = graph_rollout(g, np.array([1, 0, 1, -1, -1, 1]))
    assert r["succ"] == 0.0 and r["opt"] == 0.0 and r["action_accuracy"] == 0.25  # only 0 -> 1 is optimal


def test_argmax_of_logits_picks_the_slot(g: GraphSet) -> None:
    logits = np.full((6, 4), -1e4)
    logits[0, 1] = 1.0
    logits[1, 3] = 2.0  # down, to 5
    logits[1, 1] = 1.0
    logits[5, 1] = 0.5
    assert choices_from_logits(g, logits)[[0, 1, 5]].tolist() == [1, 5, 2]


def test_directions_snap_to_the_best_aligned_neighbour(g: GraphSet) -> None:
    d = np.zeros((6, 2))
    d[1] = [1.0, -0.3]  # cos to (1, 0) = 0.96 beats cos to unit(0.5, -1) = 0.69
    d[0] = [-1.0, 0.1]  # only neighbour is 1: snapped there whatever the direction
    d[2] = [0.0, 1.0]  # left (1) and right (3) are equally far from up: the first slot wins
    assert choices_from_directions(g, d)[[0, 1, 2]].tolist() == [1, 2, 1]
    d[1] = [0.5, -1.0]
    assert choices_from_directions(g, d)[1] == 5


def test_angular_error_by_hand(g: GraphSet) -> None:
    d = np.zeros((6, 2))
    d[0] = [1.0, 1.0]  # 45 degrees off east
    d[1] = [0.0, -3.0]  # 90 degrees off east (length does not matter)
    d[2] = [1.0, 0.0]  # exact
    d[5] = [0.0, 0.0]  # no direction: counted as 90
    err = angular_errors(g, d)
    assert err[[0, 1, 2, 5]] == pytest.approx([45.0, 90.0, 0.0, 90.0])
    assert np.isnan(err[[3, 4]]).all()


def test_bad_shapes_are_errors(g: GraphSet) -> None:
    with pytest.raises(ValueError, match="choices must be"):
        graph_rollout(g, np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="logits must be"):
        choices_from_logits(g, np.zeros((6, 3)))


def test_labels_have_zero_angular_error_even_with_ties(maze_graphs_9: GraphSet) -> None:
    """The label direction points at one optimal neighbour; where several are optimal the error is still 0."""
    err = angular_errors(maze_graphs_9, maze_graphs_9.directions())
    labelled = maze_graphs_9.optimal.any(axis=1)
    assert (maze_graphs_9.optimal.sum(axis=1) > 1).any()  # ties exist in these mazes
    assert np.allclose(err[labelled], 0.0, atol=1e-4) and np.isnan(err[~labelled]).all()
    # the opposite direction is 180 degrees from a lone optimal move
    lone = np.flatnonzero(maze_graphs_9.optimal.sum(axis=1) == 1)
    assert np.allclose(angular_errors(maze_graphs_9, -maze_graphs_9.directions())[lone], 180.0, atol=1e-3)
