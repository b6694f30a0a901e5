"""Graph data sets on disk: one ``.pth`` of plain tensors, read with ``torch.load(weights_only=True)``.

The file is a dict (``FORMAT_VERSION`` 1): ``format_version`` (int), ``kind`` (``maze-graphs`` or
``geometric-graphs``), ``params`` (the generator's parameters, JSON), the :class:`~.build.GraphSet`
arrays as tensors (``node_ptr``, ``pos``, ``obstacle``, ``goals``, ``nbr``, ``distances``,
``optimal``) and ``split`` (``[G]``: 0 train, 1 validation, 2 test). No pickled objects, so a
file cannot run code when loaded; :func:`load_graphs` checks every array's shape and the
invariants that tie them together, so a file whose arrays were swapped fails with one line.
Both label kinds (next-node sets and unit directions) derive from the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mlcore.errors import DataError
from mlcore.io import atomic_write
from mlcore_diffplan_vins.graphs.build import GraphSet

__all__ = ["FORMAT_VERSION", "load_graphs", "save_graphs", "validate"]

FORMAT_VERSION = 1
ARRAYS = ("node_ptr", "pos", "obstacle", "goals", "nbr", "distances", "optimal")
KEYS = ("format_version", "kind", "params", *ARRAYS, "split")


def save_graphs(path: str | Path, kind: str, graphs: GraphSet, split: np.ndarray, params: dict[str, Any]) -> Path:
    """Write ``graphs`` with their ``split`` codes to ``path`` (atomically)."""
    import torch

    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "params": json.dumps(params, sort_keys=True),
        **{name: torch.from_numpy(np.ascontiguousarray(getattr(graphs, name))) for name in ARRAYS},
        "nbr": torch.from_numpy(graphs.nbr.astype(np.int32)),  # int32 halves the largest array
        "split": torch.from_numpy(split.astype(np.int64)),
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def _fail(path: Path | str, message: str) -> DataError:
    return DataError(f"{path}: {message}")


def load_graphs(path: str | Path, kind: str, hint: str) -> tuple[GraphSet, np.ndarray, dict[str, Any]]:
    """Read a graph file: ``(graphs, split codes, params)``; :class:`DataError` (one line) on any problem.

    ``hint`` is the command that creates the file, named when it is missing.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"graph file not found: {path} (create it with `{hint}`)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(path, f"not a readable graph file ({first})") from None
    if not isinstance(raw, dict):
        raise _fail(path, f"expected a dict of tensors, got {type(raw).__name__}")
    missing = [k for k in KEYS if k not in raw]
    if missing:
        raise _fail(path, f"missing key(s) {', '.join(missing)} (has: {', '.join(sorted(map(str, raw)))})")
    if raw["format_version"] != FORMAT_VERSION:
        raise _fail(path, f"format_version={raw['format_version']!r} is not supported (this reader: {FORMAT_VERSION})")
    if raw["kind"] != kind:
        raise _fail(path, f"holds {raw['kind']!r} graphs, not {kind!r} (check dataset.path)")
    try:
        params = json.loads(str(raw["params"]))
    except json.JSONDecodeError as exc:
        raise _fail(path, f"params is not JSON: {exc}") from None
    arrays = {}
    for name in (*ARRAYS, "split"):
        value = raw[name]
        if not isinstance(value, torch.Tensor):
            raise _fail(path, f"{name} must be a tensor, got {type(value).__name__}")
        arrays[name] = value.numpy()
    split = arrays.pop("split")
    graphs = GraphSet(
        node_ptr=arrays["node_ptr"].astype(np.int64),
        pos=arrays["pos"].astype(np.float64),
        obstacle=arrays["obstacle"].astype(np.uint8),
        goals=arrays["goals"].astype(np.int64),
        nbr=arrays["nbr"].astype(np.int64),
        distances=arrays["distances"].astype(np.float64),
        optimal=arrays["optimal"].astype(np.uint8),
    )
    validate(graphs, split, path)
    return graphs, split.astype(np.int64), params


def validate(graphs: GraphSet, split: np.ndarray, path: Path | str = "graphs") -> None:
    """Check shapes and the invariants linking the arrays; :class:`DataError` naming the array."""
    ptr = graphs.node_ptr
    if ptr.ndim != 1 or len(ptr) < 2 or ptr[0] != 0 or (np.diff(ptr) < 1).any():
        raise _fail(path, "node_ptr must start at 0 and increase (one entry per graph + 1)")
    g, n = len(ptr) - 1, int(ptr[-1])
    nbr = graphs.nbr
    if nbr.ndim != 2 or nbr.shape[0] != n or nbr.shape[1] < 1:
        raise _fail(path, f"nbr must be [N, D] with N = node_ptr[-1] = {n}; got {list(nbr.shape)}")
    d = nbr.shape[1]
    expect = {
        "pos": (graphs.pos, (n, 2)),
        "obstacle": (graphs.obstacle, (n,)),
        "goals": (graphs.goals, (g,)),
        "distances": (graphs.distances, (n,)),
        "optimal": (graphs.optimal, (n, d)),
        "split": (split, (g,)),
    }
    for name, (arr, shape) in expect.items():
        if arr.shape != shape:
            raise _fail(path, f"{name} must be {list(shape)} to match node_ptr/nbr; got {list(arr.shape)}")
    if not np.isfinite(graphs.pos).all():
        raise _fail(path, "pos contains NaN or infinite coordinates")
    if np.isnan(graphs.distances).any():
        raise _fail(path, "distances contain NaN")
    if not np.isin(graphs.obstacle, (0, 1)).all() or not np.isin(graphs.optimal, (0, 1)).all():
        raise _fail(path, "obstacle and optimal must hold only 0 and 1")
    if not np.isin(split, (0, 1, 2)).all():
        raise _fail(path, "split must hold only 0 (train), 1 (val), 2 (test)")
    sizes = np.diff(ptr)
    local_size = np.repeat(sizes, sizes)[:, None]
    if ((nbr < -1) | (nbr >= local_size)).any():
        raise _fail(path, "nbr holds a node index outside its graph")
    if ((graphs.goals < 0) | (graphs.goals >= sizes)).any():
        raise _fail(path, "goals hold a node index outside its graph")
    goal = graphs.global_goals()
    if (graphs.obstacle[goal] != 0).any():
        raise _fail(path, "a goal lies on an obstacle (goals and obstacle do not belong together)")
    if (graphs.distances[goal] != 0).any():
        raise _fail(path, "distances are not 0 at the goals (distances and goals do not belong together)")
    if np.isfinite(graphs.distances[graphs.obstacle == 1]).any():
        raise _fail(path, "distances are finite at obstacles (distances and obstacle do not belong together)")
    reach = np.isfinite(graphs.distances) & (graphs.distances > 0)
    if not np.array_equal(graphs.optimal.any(axis=1), reach):
        raise _fail(path, "optimal is not set exactly at the nodes that reach the goal (arrays do not belong together)")
