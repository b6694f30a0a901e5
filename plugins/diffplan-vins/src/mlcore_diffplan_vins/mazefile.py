"""Maze data sets on disk: the named ``.npz`` format, and the reference (GPPN / diffplan) positional layout.

The named format (``FORMAT_VERSION`` 1) holds one array per name, so nothing depends on the
order in which arrays were saved:

==================  ===================  =========================================================
name                shape / dtype        meaning
==================  ===================  =========================================================
``format_version``  ``()`` int           1
``params``          ``()`` str           the generator's parameters, JSON
``maps``            ``[N, M, M]`` uint8   1 = wall, 0 = free
``goals``           ``[N, 2]`` int64      goal ``(row, col)``
``distances``       ``[N, M, M]`` float32 shortest-path cost to the goal, ``inf`` at walls/unreachable
``optimal_actions`` ``[N, A, M, M]`` uint8 1 where the action starts a shortest path (``4abs-cc`` order)
``open_prob``       ``[N]`` float32       the per-maze wall-opening probability
``split``           ``[N]`` int8          0 train, 1 validation, 2 test
==================  ===================  =========================================================

:func:`load_named` checks every array's name, shape, dtype and the invariants that tie them
together (goal on a free cell at distance 0, walls at ``inf``, an optimal action exactly at the
cells that reach the goal), so a file whose arrays were swapped or mislabelled fails with one line.
The reference positional layout (``arr_0`` .. ``arr_8``: maze, goal map, one-hot policy per
split, maze 1 = free) is read by :func:`load_reference`, which recomputes exact labels.
"""

from __future__ import annotations

import itertools
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mlcore.errors import DataError
from mlcore.io import atomic_write
from mlcore_diffplan_vins.mazes import MazeSet, goal_distances, optimal_action_sets

__all__ = ["FORMAT_VERSION", "SPLITS", "load_named", "load_reference", "save_named"]

FORMAT_VERSION = 1
#: Split codes of the ``split`` array.
SPLITS = {"train": 0, "val": 1, "test": 2}
NAMED_KEYS = ("format_version", "params", "maps", "goals", "distances", "optimal_actions", "open_prob", "split")


def save_named(path: str | Path, mazes: MazeSet, split: np.ndarray, params: dict[str, Any]) -> Path:
    """Write ``mazes`` and their ``split`` codes to ``path`` in the named format (atomically)."""
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "params": np.array(json.dumps(params, sort_keys=True)),
        "maps": mazes.walls.astype(np.uint8),
        "goals": mazes.goals.astype(np.int64),
        "distances": mazes.distances.astype(np.float32),
        "optimal_actions": mazes.optimal_actions.astype(np.uint8),
        "open_prob": mazes.open_prob.astype(np.float32),
        "split": split.astype(np.int8),
    }
    return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))  # type: ignore[arg-type]


def _open(path: Path, hint: str) -> Any:
    if not path.is_file():
        raise DataError(f"maze file not found: {path} (create it with `{hint}`)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz file: {exc}") from exc


def _fail(path: Path, message: str) -> DataError:
    return DataError(f"{path}: {message}")


def load_named(
    path: str | Path, hint: str = "mlcore data generate grid-mazes"
) -> tuple[MazeSet, np.ndarray, dict[str, Any]]:
    """Read a named-format file: ``(mazes, split codes, generator params)``; :class:`DataError` on any mismatch."""
    path = Path(path)
    with _open(path, hint) as f:
        names = set(f.files)
        if "maps" not in names and any(n.startswith("arr_") for n in names):
            raise _fail(
                path, "holds positional arrays (arr_0, ...), the reference layout: set dataset.layout=reference"
            )
        missing = [k for k in NAMED_KEYS if k not in names]
        if missing:
            raise _fail(path, f"missing array(s) {', '.join(missing)} (has: {', '.join(sorted(names))})")
        try:
            arrays = {k: f[k] for k in NAMED_KEYS}
        except ValueError as exc:  # object arrays need pickle, which is refused
            raise _fail(path, f"unreadable array: {exc}") from exc
    version = int(arrays["format_version"])
    if version != FORMAT_VERSION:
        raise _fail(path, f"format_version={version} is not supported (this reader: {FORMAT_VERSION})")
    try:
        params = json.loads(str(arrays["params"]))
    except json.JSONDecodeError as exc:
        raise _fail(path, f"params is not JSON: {exc}") from exc
    mazes = MazeSet(
        walls=arrays["maps"],
        goals=arrays["goals"],
        distances=arrays["distances"].astype(np.float64),
        optimal_actions=arrays["optimal_actions"],
        open_prob=arrays["open_prob"].astype(np.float64),
    )
    validate(mazes, arrays["split"], path)
    return mazes, arrays["split"].astype(np.int64), params


def validate(mazes: MazeSet, split: np.ndarray, path: Path | str = "mazes") -> None:
    """Check shapes, dtypes and the invariants linking the arrays; :class:`DataError` naming the array."""
    path = Path(path)
    m = mazes.walls
    if m.ndim != 3 or m.shape[1] != m.shape[2] or m.shape[1] < 3:
        raise _fail(path, f"maps must be [N, M, M]; got {list(m.shape)}")
    n, size = m.shape[0], m.shape[1]
    expect = {
        "goals": (mazes.goals, (n, 2)),
        "distances": (mazes.distances, (n, size, size)),
        "open_prob": (mazes.open_prob, (n,)),
        "split": (split, (n,)),
    }
    for name, (arr, shape) in expect.items():
        if arr.shape != shape:
            raise _fail(path, f"{name} must be {list(shape)} to match maps {list(m.shape)}; got {list(arr.shape)}")
    opt = mazes.optimal_actions
    if opt.ndim != 4 or opt.shape[0] != n or opt.shape[1] not in (4, 8) or opt.shape[2:] != (size, size):
        raise _fail(
            path, f"optimal_actions must be [N, 4 or 8, M, M] with N, M of maps {list(m.shape)}; got {list(opt.shape)}"
        )
    if not np.isin(m, (0, 1)).all():
        raise _fail(path, "maps must hold only 0 (free) and 1 (wall)")
    if not np.isin(opt, (0, 1)).all():
        raise _fail(path, "optimal_actions must hold only 0 and 1")
    if not np.isin(split, (0, 1, 2)).all():
        raise _fail(path, "split must hold only 0 (train), 1 (val), 2 (test)")
    g = mazes.goals
    if (g < 0).any() or (g >= size).any():
        raise _fail(path, f"goals must lie in [0, {size - 1}]")
    rows = np.arange(n)
    d = mazes.distances
    if np.isnan(d).any():
        raise _fail(path, "distances contain NaN")
    if (m[rows, g[:, 0], g[:, 1]] != 0).any():
        raise _fail(path, "a goal lies on a wall (maps and goals do not belong together)")
    if (d[rows, g[:, 0], g[:, 1]] != 0).any():
        raise _fail(path, "distances are not 0 at the goals (distances and goals do not belong together)")
    if np.isfinite(d[m == 1]).any():
        raise _fail(path, "distances are finite at walls (distances and maps do not belong together)")
    reach = np.isfinite(d) & (d > 0)
    if not np.array_equal(opt.any(axis=1), reach):
        raise _fail(
            path, "optimal_actions are not set exactly at the cells that reach the goal (arrays do not belong together)"
        )


def load_reference(
    path: str | Path, hint: str = "the reference generator (GPPN/diffplan generate_dataset)"
) -> tuple[MazeSet, np.ndarray, dict[str, Any]]:
    """Read the reference positional layout and recompute exact labels.

    ``arr_{3s}``, ``arr_{3s+1}``, ``arr_{3s+2}`` are split ``s``'s mazes (1 = free), goal maps
    (``[N, 1, M, M]`` or ``[N, M, M]``) and one-hot policies (``[N, A, 1, M, M]`` or
    ``[N, A, M, M]``). The exact optimal sets are recomputed by Dijkstra; the reference's action
    order is matched to ``4abs-cc`` by the one-hot labels (each reference action is mapped to
    the action whose optimal set holds it most often; below 99 % agreement is a :class:`DataError`).
    """
    path = Path(path)
    with _open(path, hint) as f:
        need = [f"arr_{i}" for i in range(9)]
        missing = [k for k in need if k not in f.files]
        if missing:
            raise _fail(
                path, f"not the reference layout: missing {', '.join(missing)} (has: {', '.join(sorted(f.files))})"
            )
        arrays = [f[k] for k in need]
    walls_l, goals_l, policy_l, split_l = [], [], [], []
    for s in range(3):
        maze, goal_map, policy = arrays[3 * s], arrays[3 * s + 1], arrays[3 * s + 2]
        if maze.ndim != 3:
            raise _fail(path, f"arr_{3 * s} (mazes) must be [N, M, M]; got {list(maze.shape)}")
        if goal_map.ndim == 4:
            goal_map = goal_map[:, 0]
        if policy.ndim == 5:
            policy = policy[:, :, 0]
        if (
            goal_map.shape != maze.shape
            or policy.ndim != 4
            or policy.shape[0] != maze.shape[0]
            or policy.shape[2:] != maze.shape[1:]
        ):
            raise _fail(
                path,
                f"split {s}: arrays arr_{3 * s}..arr_{3 * s + 2} have shapes {list(maze.shape)}, "
                f"{list(goal_map.shape)}, "
                f"{list(policy.shape)}; expected maze [N, M, M], goal map [N, (1,) M, M], policy [N, A, (1,) M, M]",
            )
        if np.isnan(maze).any() or not np.isin(maze, (0, 1)).all():
            raise _fail(path, f"arr_{3 * s} (mazes) must hold only 0 and 1")
        flat = goal_map.reshape(len(goal_map), -1)
        if not (flat.sum(axis=1) == 1).all():
            raise _fail(path, f"arr_{3 * s + 1} (goal maps) must be one-hot")
        idx = flat.argmax(axis=1)
        size = maze.shape[1]
        walls_l.append((1 - maze).astype(np.uint8))
        goals_l.append(np.stack([idx // size, idx % size], axis=1))
        policy_l.append(policy)
        split_l.append(np.full(len(maze), s, dtype=np.int64))
    walls = np.concatenate(walls_l)
    goals = np.concatenate(goals_l).astype(np.int64)
    policy = np.concatenate(policy_l)
    num_actions = policy.shape[1]
    if num_actions not in (4, 8):
        raise _fail(path, f"policies have {num_actions} actions; only 4 and 8 are supported")
    walls[np.arange(len(walls)), goals[:, 0], goals[:, 1]] = 0
    dist = goal_distances(walls, goals, num_actions)
    opt = optimal_action_sets(walls, dist, num_actions)
    mapping, agreement = _match_actions(policy, opt)
    if agreement < 0.99:
        raise _fail(
            path, f"the one-hot policies agree with exact shortest paths at only {agreement:.1%} of labelled cells"
        )
    mazes = MazeSet(walls, goals, dist, opt, np.full(len(walls), np.nan))
    params = {"layout": "reference", "num_actions": num_actions, "size": int(walls.shape[1]), "action_map": mapping}
    return mazes, np.concatenate(split_l), params


def _match_actions(policy: np.ndarray, opt: np.ndarray) -> tuple[list[int], float]:
    """Map reference action ``i`` to our action ``mapping[i]``; returns the mapping and its agreement."""
    num_actions = policy.shape[1]
    labelled = (policy > 0) & opt.any(axis=1, keepdims=True)
    hits = np.array(
        [[int((labelled[:, i] & (opt[:, j] > 0)).sum()) for j in range(num_actions)] for i in range(num_actions)]
    )
    total = max(int(labelled.sum()), 1)
    if num_actions == 4:
        best = max(itertools.permutations(range(4)), key=lambda p: sum(hits[i, p[i]] for i in range(4)))
        mapping = list(best)
    else:
        mapping = [int(j) for j in hits.argmax(axis=1)]
    return mapping, sum(int(hits[i, mapping[i]]) for i in range(num_actions)) / total
