"""Configs of the graph components (no torch import here, so listing the plugin stays light).

Data sets: :class:`MazeGraphsConfig` (part 1's mazes as graphs) and :class:`GeometricGraphsConfig`.
Planners: :class:`GraphPlannerConfig` and one subclass per model. Loss and evaluator at the end.
"""

from __future__ import annotations

import attrs

from mlcore.config import in_range, one_of

__all__ = [
    "GATVINConfig",
    "GCNVINv2Config",
    "GeometricGraphsConfig",
    "GraphActionLossConfig",
    "GraphPlannerConfig",
    "GraphRolloutConfig",
    "MPVINConfig",
    "MazeGraphsConfig",
    "SymMPVINConfig",
]


@attrs.define
class MazeGraphsConfig:
    """Config of the ``maze-graphs`` data set (table ``dataset``): part 1's DFS mazes as graphs.

    Every cell is a node at its ``(column, row)`` coordinate (north = +y) with the features
    ``(goal, obstacle)``; each node has one edge per move (``actions`` of them, fewer at the map's
    border), so a node's neighbour *slots* are the grid actions and a step into an obstacle leaves
    the agent in place, exactly as on the grid.

    Attributes:
        size: side M of the M×M mazes.
        num: number of distinct mazes over all splits.
        actions: 4 (N, W, S, E) or 8 (with the diagonals, cost sqrt 2).
        seed: the generator's seed (the data's own: the run's ``--seed`` does not change it).
        val_fraction, test_fraction: shares of ``num`` in the validation and test splits.
        min_reachable: reject mazes where fewer than this share of free cells reach the goal.
        continuous: targets are unit direction vectors toward the optimal neighbour (else next-node sets).
        path: read this ``.pth`` instead of generating (empty = generate).
    """

    size: int = attrs.field(default=15, validator=in_range(5, 128))
    num: int = attrs.field(default=10000, validator=in_range(3, 10_000_000))
    actions: int = attrs.field(default=4, validator=one_of(4, 8))
    seed: int = 0
    val_fraction: float = attrs.field(default=0.1, validator=in_range(0.0, 0.5))
    test_fraction: float = attrs.field(default=0.1, validator=in_range(0.0, 0.5, low_open=True))
    min_reachable: float = attrs.field(default=0.5, validator=in_range(0.0, 1.0))
    continuous: bool = False
    path: str = ""


@attrs.define
class GeometricGraphsConfig:
    """Config of the ``geometric-graphs`` data set (table ``dataset``): random geometric graphs with obstacles.

    ``nodes`` points are drawn uniformly in a square of side ``sqrt(nodes)`` (about one node per
    unit area); every node gets directed edges to its ``degree`` nearest neighbours (its slots,
    ordered by distance); ``obstacles`` discs of radius ``obstacle_radius`` mark the nodes inside
    them as obstacles. An edge can be travelled when both ends are free; its cost is its length.

    Attributes:
        nodes: nodes per graph.
        num: number of graphs over all splits.
        degree: out-edges per node (k nearest neighbours).
        obstacles: discs per graph.
        obstacle_radius: radius of each disc (in the unit of the node spacing).
        seed, val_fraction, test_fraction, min_reachable, continuous, path: as in :class:`MazeGraphsConfig`.
    """

    nodes: int = attrs.field(default=100, validator=in_range(8, 100_000))
    num: int = attrs.field(default=10000, validator=in_range(3, 10_000_000))
    degree: int = attrs.field(default=8, validator=in_range(2, 32))
    obstacles: int = attrs.field(default=4, validator=in_range(0, 1000))
    obstacle_radius: float = attrs.field(default=1.2, validator=in_range(0.0, 1000.0))
    seed: int = 0
    val_fraction: float = attrs.field(default=0.1, validator=in_range(0.0, 0.5))
    test_fraction: float = attrs.field(default=0.1, validator=in_range(0.0, 0.5, low_open=True))
    min_reachable: float = attrs.field(default=0.5, validator=in_range(0.0, 1.0))
    continuous: bool = False
    path: str = ""


@attrs.define
class GraphPlannerConfig:
    """Fields every graph planner shares (section ``model``).

    Attributes:
        k: value-iteration steps K (value travels one edge per step).
        hidden_channels: width of the node encoder and the edge networks.
        q_channels: Q channels per edge (the value is the max over edges and channels).
        max_degree: neighbour slots per node; the pipelines set it from the data set.
    """

    k: int = attrs.field(default=30, validator=in_range(1, 1000))
    hidden_channels: int = attrs.field(default=32, validator=in_range(1, 4096))
    q_channels: int = attrs.field(default=8, validator=in_range(1, 4096))
    max_degree: int = attrs.field(default=4, validator=in_range(1, 64))


@attrs.define
class MPVINConfig(GraphPlannerConfig):
    """Config of MP-VIN.

    Attributes:
        cont_action: predict a 2-D direction per node instead of logits over its neighbour slots
            (the pipelines set it from ``dataset.continuous``).
        equiv_policy: the direction is a weighted sum of the relative neighbour vectors (so it turns
            with the graph); otherwise an MLP maps the planner's features to ``(dx, dy)``.
    """

    cont_action: bool = False
    equiv_policy: bool = True


@attrs.define
class SymMPVINConfig(MPVINConfig):
    """Config of Sym-MP-VIN (same fields as MP-VIN; its messages see distances only, not directions)."""


@attrs.define
class GATVINConfig(GraphPlannerConfig):
    """Config of GAT-VIN.

    Attributes:
        heads: attention heads of the Bellman layer (each adds ``q_channels`` Q channels).
    """

    heads: int = attrs.field(default=2, validator=in_range(1, 64))


@attrs.define
class GCNVINv2Config(GraphPlannerConfig):
    """Config of GCN-VIN-v2."""


@attrs.define
class GraphActionLossConfig:
    """Config of the ``graph-action`` loss (table ``loss``).

    Attributes:
        continuous: score unit directions (``1 - cos``, or the angle) instead of next-node sets;
            the pipelines set it from ``dataset.continuous``.
        target: discrete: ``set`` (-log P(optimal set)) or ``uniform`` (CE to the uniform set distribution).
        angular: continuous: ``cosine`` (``1 - cos``) or ``angle`` (the angle in radians).
    """

    continuous: bool = False
    target: str = attrs.field(default="set", validator=one_of("set", "uniform"))
    angular: str = attrs.field(default="cosine", validator=one_of("cosine", "angle"))


@attrs.define
class GraphRolloutConfig:
    """Config of the ``graph-rollout`` evaluator (table ``evaluator``).

    Attributes:
        batch_size: graphs per forward pass.
        max_graphs: evaluate at most this many test graphs (0 = all).
    """

    batch_size: int = attrs.field(default=64, validator=in_range(1, 1_000_000))
    max_graphs: int = attrs.field(default=0, validator=in_range(0))
