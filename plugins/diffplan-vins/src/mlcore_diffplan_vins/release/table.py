"""The release table: which models a release holds and how each is trained (data only, no torch).

Every :class:`ReleaseEntry` is one call of :func:`mlcore.api.run` on one of the plugin's
single-model pipelines (``single`` for grid planners, ``graph-single`` for graph planners and the
continuous-action variants) with the entry's ``--set`` overrides. The ``release`` pipeline trains
each entry into ``runs/<name>`` and lays the result out under ``pretrained_models/<category>/<name>``.
Add a model to the release by appending one entry here.
"""

from __future__ import annotations

import attrs

__all__ = ["CATEGORIES", "RELEASE_TABLE", "ReleaseEntry", "entry_named"]

#: The release's sub-directories, in the order the README lists them.
CATEGORIES = ("grid", "graph", "continuous")

#: The research setup every ``full`` entry shares (the ``single`` pipelines' ``full`` profile sets
#: 10,000 mazes, 100 epochs, batch 32 and RMSprop at lr 1e-3; the seed is the entry's).
RESEARCH_SEED = 42


@attrs.frozen
class ReleaseEntry:
    """One released model.

    Attributes:
        name: the release name (``VIN_maze15``), also the directory and the :func:`load_pretrained` key.
        category: ``grid``, ``graph`` or ``continuous`` (the sub-directory).
        pipeline: the plugin pipeline that trains it (``single`` or ``graph-single``).
        algorithm: the published name (``VIN``, ``SymVIN``, ``MP-VIN``...), recorded in the info file.
        environment: what it was trained on, in words (recorded in the info file and the README).
        overrides: ``--set`` overrides of that pipeline (model choice, notes...), applied to every profile.
        quick: further overrides of the release's ``quick`` profile (smaller networks for CI).
        notes: free text for the info file and the README.
        seed: the run seed (``--seed``; 42 as in the research setup).
    """

    name: str
    category: str = attrs.field(validator=attrs.validators.in_(CATEGORIES))
    pipeline: str
    algorithm: str
    environment: str
    overrides: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    notes: str = ""
    seed: int = RESEARCH_SEED


_MAZE15 = "15x15 grid mazes (DFS, walls opened with p ~ U(0,1)), 4 actions, exact Dijkstra labels"
_MAZE_GRAPH = "15x15 mazes as graphs (free cells as nodes, edges between neighbours), exact next-node labels"
_GEOMETRIC = "random geometric graphs with obstacles, exact next-node labels"
_CONT = "15x15 maze graphs, continuous actions (unit direction toward the optimal neighbour)"


def _grid(name: str, algorithm: str, notes: str, quick: tuple[str, ...] = ()) -> ReleaseEntry:
    # model.name, not `algorithm=`: the single pipeline's `algorithm` replaces the whole [model] table,
    # which would drop the quick profile's model.* overrides
    model = "".join(ch for ch in algorithm.lower() if ch.isalnum() or ch == "-")
    return ReleaseEntry(
        name=name,
        category="grid",
        pipeline="single",
        algorithm=algorithm,
        environment=_MAZE15,
        overrides=(f"model.name={model}", f"notes={notes}"),
        quick=quick,
        notes=notes,
    )


def _graph(
    name: str, model: str, algorithm: str, environment: str, dataset: str, notes: str, *, continuous: bool = False
) -> ReleaseEntry:
    overrides = [f"model.name={model}", f"dataset.name={dataset}", f"notes={notes}"]
    if continuous:
        overrides.append("dataset.continuous=true")
    return ReleaseEntry(
        name=name,
        category="continuous" if continuous else "graph",
        pipeline="graph-single",
        algorithm=algorithm,
        environment=environment,
        overrides=tuple(overrides),
        notes=notes,
    )


#: Every released model, in README order. The ``graph-single`` entries need the graph planners
#: (``mlcore_diffplan_vins.graphs``); see docs/plugins/diffplan-vins.md, "Model release".
RELEASE_TABLE: tuple[ReleaseEntry, ...] = (
    _grid("VIN_maze15", "VIN", "Standard VIN for 15x15 maze, release model", ("model.hidden_channels=32",)),
    _grid(
        "SymVIN_maze15",
        "SymVIN",
        "Symmetric VIN with D4 group for 15x15 maze",
        ("model.hidden_channels=4", "model.q_channels=4"),
    ),
    _grid("DE-VIN_maze15", "DE-VIN", "Deep-equilibrium VIN (Anderson, implicit backward) for 15x15 maze"),
    _grid(
        "DE-SymVIN_maze15",
        "DE-SymVIN",
        "Deep-equilibrium SymVIN for 15x15 maze",
        ("model.hidden_channels=4", "model.q_channels=4", "model.max_iter=20"),
    ),
    _grid("GPPN_maze15", "GPPN", "Gated path planning network for 15x15 maze", ("model.hidden_channels=32",)),
    _grid("ConvGPPN_maze15", "ConvGPPN", "Convolutional GPPN for 15x15 maze", ("model.q_channels=16",)),
    _grid("SymGPPN_maze15", "SymGPPN", "D4-equivariant ConvGPPN for 15x15 maze", ("model.q_channels=4",)),
    _graph("MP-VIN_maze15", "mp-vin", "MP-VIN", _MAZE_GRAPH, "maze-graphs", "Message-passing VIN on maze graphs"),
    _graph(
        "Sym-MP-VIN_maze15",
        "sym-mp-vin",
        "Sym-MP-VIN",
        _MAZE_GRAPH,
        "maze-graphs",
        "E(2)/D4-aware message-passing VIN on maze graphs",
    ),
    _graph("GAT-VIN_maze15", "gat-vin", "GAT-VIN", _MAZE_GRAPH, "maze-graphs", "Graph-attention VIN on maze graphs"),
    _graph(
        "GCN-VIN-v2_maze15",
        "gcn-vin-v2",
        "GCN-VIN-v2",
        _MAZE_GRAPH,
        "maze-graphs",
        "Graph-convolution VIN on maze graphs",
    ),
    _graph(
        "MP-VIN_geometric",
        "mp-vin",
        "MP-VIN",
        _GEOMETRIC,
        "geometric-graphs",
        "Message-passing VIN on random geometric graphs",
    ),
    _graph(
        "MP-VIN_continuous",
        "mp-vin",
        "MP-VIN",
        _CONT,
        "maze-graphs",
        "MP-VIN with a continuous-action head",
        continuous=True,
    ),
    _graph(
        "Sym-MP-VIN_continuous",
        "sym-mp-vin",
        "Sym-MP-VIN",
        _CONT,
        "maze-graphs",
        "Sym-MP-VIN with an equivariant continuous-action head",
        continuous=True,
    ),
)


def entry_named(name: str, table: tuple[ReleaseEntry, ...] = RELEASE_TABLE) -> ReleaseEntry:
    """The entry called ``name``; a :class:`~mlcore.errors.ConfigError` listing the names otherwise."""
    from mlcore.errors import ConfigError

    for entry in table:
        if entry.name == name:
            return entry
    raise ConfigError(
        f"release entry {name!r} is not in the release table (entries: {', '.join(e.name for e in table)})"
    )
