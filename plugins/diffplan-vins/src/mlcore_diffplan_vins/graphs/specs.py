"""The graph components, listed by import path so ``plugin.py`` registers them without torch.

Each entry is ``(name, "module:Class", "module:Config", summary)``; the pipelines have profiles
in :data:`GRAPH_PROFILES` / :data:`GRAPH_SINGLE_PROFILES`. No torch or torch-geometric import here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GRAPH_DATASETS",
    "GRAPH_MODELS",
    "GRAPH_PROFILES",
    "GRAPH_SINGLE_PROFILES",
    "GraphEntry",
]

#: ``(name, "module:Class", "module:Config", summary)``.
GraphEntry = tuple[str, str, str, str]

_G = "mlcore_diffplan_vins.graphs"

#: Every graph data set.
GRAPH_DATASETS: list[GraphEntry] = [
    (
        "maze-graphs",
        f"{_G}.data:MazeGraphs",
        f"{_G}.config:MazeGraphsConfig",
        "grid-maze cells as graph nodes (obstacles marked), exact next-node sets, values and unit directions",
    ),
    (
        "geometric-graphs",
        f"{_G}.data:GeometricGraphs",
        f"{_G}.config:GeometricGraphsConfig",
        "random geometric (k-nearest-neighbour) graphs with disc obstacles, exact next-node sets and directions",
    ),
]

#: Every graph planner, in the order comparison tables list them.
GRAPH_MODELS: list[GraphEntry] = [
    (
        "mp-vin",
        f"{_G}.models:MPVIN",
        f"{_G}.config:MPVINConfig",
        "MP-VIN: value iteration by message passing, edge transitions from relative positions",
    ),
    (
        "sym-mp-vin",
        f"{_G}.models:SymMPVIN",
        f"{_G}.config:SymMPVINConfig",
        "Sym-MP-VIN: E(2)-equivariant message-passing value iteration (distances in, vectors out)",
    ),
    (
        "gat-vin",
        f"{_G}.models:GATVIN",
        f"{_G}.config:GATVINConfig",
        "GAT-VIN: value iteration whose Bellman backup is a graph-attention layer (torch-geometric GATConv)",
    ),
    (
        "gcn-vin-v2",
        f"{_G}.models:GCNVINv2",
        f"{_G}.config:GCNVINv2Config",
        "GCN-VIN-v2: value iteration with graph convolutions (GCNConv) and an edge-wise policy head",
    ),
]

_TRAINER_FULL: dict[str, Any] = {"epochs": 100, "batch_size": 32, "lr": 1e-3, "optimizer": "rmsprop"}

#: ``graph-single`` profiles (valid for both data sets): ``quick`` trains one planner in about a minute on a CPU.
GRAPH_SINGLE_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "dataset": {"num": 120},
        "model": {"k": 20},
        "trainer": {"epochs": 4, "batch_size": 16, "lr": 5e-3, "optimizer": "adam"},
    },
    "full": {"dataset": {"num": 10000}, "trainer": _TRAINER_FULL},
}

#: ``graph`` profiles (every planner + baselines on identical data).
GRAPH_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "dataset": {"num": 100},
        "planner": {"k": 20, "hidden_channels": 24},
        "trainer": {"epochs": 3, "batch_size": 16, "lr": 5e-3, "optimizer": "adam"},
    },
    "full": {"dataset": {"num": 10000}, "trainer": _TRAINER_FULL},
}
