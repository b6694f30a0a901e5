"""The ``maze-graphs`` and ``geometric-graphs`` data modules: labelled graphs as torch-geometric ``Data``.

Each item is ``(graph, targets)``: ``graph`` a :class:`torch_geometric.data.Data` with ``x [n, 2]``
(goal one-hot, obstacle), ``pos [n, 2]``, ``edge_index [2, E]`` (one edge ``node -> neighbour``
per non-empty slot) and ``slot [E]`` (which of the node's slots the edge is); ``targets`` is
``[n, D]`` 0/1 (the optimal next-node set over the node's slots) or, with ``continuous = true``,
``[n, 2]`` (the unit direction toward the optimal neighbour; zero where no label). Batches are
``(Batch, targets concatenated over the nodes)``. The labelled arrays stay available as
:meth:`GraphData.graphs_of` for the evaluator.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlcore.data import DataModule
from mlcore.errors import ConfigError, DataError
from mlcore_diffplan_vins.graphs.build import GraphSet, geometric_graphs, maze_graphs
from mlcore_diffplan_vins.graphs.config import GeometricGraphsConfig, MazeGraphsConfig
from mlcore_diffplan_vins.graphs.graphfile import load_graphs, save_graphs
from mlcore_diffplan_vins.mazefile import SPLITS

__all__ = ["GeometricGraphs", "GraphData", "GraphItems", "MazeGraphs", "collate_graphs", "graph_items"]


class GraphItems:
    """A map-style dataset of ``(Data, targets)`` pairs (a list with the torch ``Dataset`` protocol)."""

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.items[index]


def collate_graphs(items: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """``(Batch of the graphs, targets concatenated over their nodes)``."""
    import torch
    from torch_geometric.data import Batch

    graphs, targets = zip(*items)
    return Batch.from_data_list(list(graphs)), torch.cat(list(targets))


def graph_items(graphs: GraphSet, continuous: bool) -> list[tuple[Any, Any]]:
    """One ``(Data, targets)`` pair per graph of ``graphs`` (see the module docstring)."""
    import torch
    from torch_geometric.data import Data

    directions = graphs.directions() if continuous else None
    out = []
    d = graphs.num_slots
    for g in range(len(graphs)):
        lo, hi = int(graphs.node_ptr[g]), int(graphs.node_ptr[g + 1])
        n = hi - lo
        x = np.zeros((n, 2), dtype=np.float32)
        x[graphs.goals[g], 0] = 1.0
        x[:, 1] = graphs.obstacle[lo:hi]
        nbr = graphs.nbr[lo:hi]
        src, slot = np.nonzero(nbr >= 0)
        edge_index = np.stack([src, nbr[src, slot]])
        data = Data(
            x=torch.from_numpy(x),
            pos=torch.from_numpy(graphs.pos[lo:hi].astype(np.float32)),
            edge_index=torch.from_numpy(edge_index.astype(np.int64)),
            slot=torch.from_numpy(slot.astype(np.int64)),
            num_nodes=n,
        )
        if directions is not None:
            target = torch.from_numpy(directions[lo:hi])
        else:
            target = torch.from_numpy(graphs.optimal[lo:hi].astype(np.float32))
        assert target.shape[0] == n and (continuous or target.shape[1] == d)
        out.append((data, target))
    return out


def split_codes(num: int, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Part 1's seeded split (0 train, 1 val, 2 test)."""
    from mlcore_diffplan_vins.data import split_codes as grid_split_codes

    return grid_split_codes(num, val_fraction, test_fraction, seed)


class GraphData(DataModule):
    """Shared flow of the graph data sets: generate (or read ``path``), split, build items."""

    kind = ""
    config: Any
    collate_fn = staticmethod(collate_graphs)

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.graphs: GraphSet | None = None
        self.split_of: np.ndarray | None = None
        self.params: dict[str, Any] = {}
        self.generate_seconds = 0.0
        self._sets: dict[str, GraphItems | None] = {}

    # -- what each source defines ------------------------------------------------
    def _generate(self) -> GraphSet:
        raise NotImplementedError

    def hint(self) -> str:
        """The ``mlcore data generate`` command that writes this config's file."""
        raise NotImplementedError

    def file_name(self) -> str:
        """The file ``mlcore data generate`` writes."""
        raise NotImplementedError

    # -- the flow --------------------------------------------------------------
    def setup(self) -> None:
        """Generate the graphs (or read ``path``), then build the three splits."""
        cfg = self.config
        if cfg.path:
            self.graphs, self.split_of, self.params = load_graphs(cfg.path, self.kind, self.hint())
        else:
            start = time.perf_counter()
            try:
                self.graphs = self._generate()
            except ValueError as exc:
                raise ConfigError(f"dataset: {exc}") from exc
            self.generate_seconds = time.perf_counter() - start
            self.split_of = split_codes(cfg.num, cfg.val_fraction, cfg.test_fraction, cfg.seed)
            self.params = {k: v for k, v in attrs.asdict(cfg).items() if k not in ("path", "continuous")}
        for name in SPLITS:
            subset = self.graphs_of(name)
            self._sets[name] = GraphItems(graph_items(subset, cfg.continuous)) if len(subset) else None
        if self._sets["train"] is None:
            raise DataError(f"{cfg.path or 'dataset'}: the training split is empty")

    def graphs_of(self, name: str) -> GraphSet:
        """The labelled graphs of split ``name`` (``train``, ``val`` or ``test``)."""
        if self.graphs is None or self.split_of is None:
            self.prepare()
        assert self.graphs is not None and self.split_of is not None
        return self.graphs.subset(self.split_of == SPLITS[name])

    def train_set(self) -> Any:
        """``(graph, targets)`` of the training graphs."""
        return self.prepare()._sets["train"]

    def val_set(self) -> Any:
        """``(graph, targets)`` of the validation graphs (``None`` when ``val_fraction`` is 0)."""
        return self.prepare()._sets["val"]

    def test_set(self) -> Any:
        """``(graph, targets)`` of the test graphs."""
        return self.prepare()._sets["test"]

    def dimensions(self) -> dict[str, int]:
        """``{"max_degree": D, "cont_action": continuous}`` for the model config."""
        self.prepare()
        assert self.graphs is not None
        return {"max_degree": self.graphs.num_slots, "cont_action": bool(self.config.continuous)}

    def generate(self, out_dir: Path) -> list[Path]:
        """Write all splits to one ``.pth`` under ``out_dir`` (``mlcore data generate NAME``)."""
        self.prepare()
        assert self.graphs is not None and self.split_of is not None
        path = Path(out_dir) / self.file_name()
        save_graphs(path, self.kind, self.graphs, self.split_of, self.params)
        return [path]


class MazeGraphs(GraphData):
    """Part 1's DFS mazes (:func:`~mlcore_diffplan_vins.mazes.generate_mazes`) as graphs (:class:`MazeGraphsConfig`)."""

    kind = "maze-graphs"
    config: MazeGraphsConfig

    def __init__(self, config: MazeGraphsConfig | None = None) -> None:
        super().__init__(config or MazeGraphsConfig())

    def _generate(self) -> GraphSet:
        from mlcore_diffplan_vins.mazes import generate_mazes

        c = self.config
        return maze_graphs(generate_mazes(c.num, c.size, c.actions, c.seed, c.min_reachable))

    def hint(self) -> str:
        """The generate command of this config."""
        c = self.config
        return f"mlcore data generate maze-graphs --size {c.size} --num {c.num} --actions {c.actions} --seed {c.seed}"

    def file_name(self) -> str:
        """``maze-graphs_m{size}_{A}abs_n{num}_seed{seed}.pth``."""
        c = self.config
        return f"maze-graphs_m{c.size}_{c.actions}abs_n{c.num}_seed{c.seed}.pth"


class GeometricGraphs(GraphData):
    """Random geometric graphs with disc obstacles; see :class:`GeometricGraphsConfig`."""

    kind = "geometric-graphs"
    config: GeometricGraphsConfig

    def __init__(self, config: GeometricGraphsConfig | None = None) -> None:
        super().__init__(config or GeometricGraphsConfig())

    def _generate(self) -> GraphSet:
        c = self.config
        return geometric_graphs(
            c.num, c.nodes, c.degree, c.obstacles, c.obstacle_radius, seed=c.seed, min_reachable=c.min_reachable
        )

    def hint(self) -> str:
        """The generate command of this config."""
        c = self.config
        return (
            f"mlcore data generate geometric-graphs --nodes {c.nodes} --num {c.num} --degree {c.degree} "
            f"--obstacles {c.obstacles} --seed {c.seed}"
        )

    def file_name(self) -> str:
        """``geometric-graphs_v{nodes}_k{degree}_o{obstacles}_n{num}_seed{seed}.pth``."""
        c = self.config
        return f"geometric-graphs_v{c.nodes}_k{c.degree}_o{c.obstacles}_n{c.num}_seed{c.seed}.pth"
