"""A hand-made graph whose rollouts are worked out by hand in the tests.

::

        4 (obstacle, above 1)
        |
    0 - 1 - 2 - 3 (goal)          along y = 0, unit spacing
         \\ /
          5                       at (1.5, -1): 1 -> 5 -> 2 is a detour of 2 * sqrt(1.25)

Slots: 0 = left, 1 = right, 2 = up, 3 = down.
"""

from __future__ import annotations

import numpy as np

from mlcore_diffplan_vins.graphs.build import GraphSet, label_graphs


def hand_graph() -> GraphSet:
    """The graph above with exact labels."""
    pos = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [1, 1], [1.5, -1]], dtype=np.float64)
    nbr = np.array(
        [
            [-1, 1, -1, -1],
            [0, 2, 4, 5],
            [1, 3, -1, -1],
            [2, -1, -1, -1],
            [-1, -1, -1, 1],
            [1, 2, -1, -1],
        ],
        dtype=np.int64,
    )
    obstacle = np.array([0, 0, 0, 0, 1, 0], dtype=np.uint8)
    ptr = np.array([0, 6], dtype=np.int64)
    goals = np.array([3], dtype=np.int64)
    dist, optimal = label_graphs(ptr, pos, obstacle, goals, nbr)
    return GraphSet(ptr, pos, obstacle, goals, nbr, dist, optimal)
