"""The ``grid-mazes`` data module: generated (or loaded) mazes as ``(maps, optimal action sets)`` pairs.

Each item is ``maps [2, M, M]`` (channel 0 obstacles, channel 1 one-hot goal) and
``targets [A, M, M]`` (1 where the action is optimal; all-zero at walls, the goal and cells that
cannot reach it). The labelled arrays themselves (distances included) stay available as
:attr:`GridMazes.mazes` for the evaluator.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlcore.config import in_range, one_of
from mlcore.data import DataModule
from mlcore.errors import ConfigError, DataError
from mlcore_diffplan_vins.mazefile import SPLITS, load_named, load_reference, save_named
from mlcore_diffplan_vins.mazes import MazeSet, generate_mazes

__all__ = ["GridMazes", "GridMazesConfig", "maze_tensors"]


@attrs.define
class GridMazesConfig:
    """Config of the ``grid-mazes`` data set (table ``dataset``).

    Attributes:
        size: side M of the M×M maps (15 as in the literature; 28 and 50 work).
        num: number of distinct mazes over all splits.
        actions: 4 (``4abs-cc``: N, W, S, E) or 8 (adds the diagonals, cost sqrt 2).
        seed: the generator's seed (the data's own: the run's ``--seed`` does not change it).
        val_fraction, test_fraction: shares of ``num`` in the validation and test splits.
        min_reachable: reject mazes where fewer than this share of free cells reach the goal.
        path: read this ``.npz`` instead of generating (empty = generate).
        layout: how to read ``path``: ``named`` (this plugin's format) or ``reference``
            (the positional GPPN/diffplan layout, labels recomputed exactly).
    """

    size: int = attrs.field(default=15, validator=in_range(5, 128))
    num: int = attrs.field(default=10000, validator=in_range(3, 10_000_000))
    actions: int = attrs.field(default=4, validator=one_of(4, 8))
    seed: int = 0
    val_fraction: float = attrs.field(default=0.1, validator=in_range(0.0, 0.5))
    test_fraction: float = attrs.field(default=0.1, validator=in_range(0.0, 0.5, low_open=True))
    min_reachable: float = attrs.field(default=0.5, validator=in_range(0.0, 1.0))
    path: str = ""
    layout: str = attrs.field(default="named", validator=one_of("named", "reference"))


def maze_tensors(mazes: MazeSet) -> tuple[Any, Any]:
    """``(maps [N, 2, M, M] float32, targets [N, A, M, M] float32)`` torch tensors of ``mazes``."""
    import torch

    maps = np.stack([mazes.walls, mazes.goal_maps()], axis=1).astype(np.float32)
    return torch.from_numpy(maps), torch.from_numpy(mazes.optimal_actions.astype(np.float32))


def split_codes(num: int, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) for ``num`` mazes by a seeded permutation."""
    n_test = max(1, round(num * test_fraction))
    n_val = round(num * val_fraction)
    if num - n_test - n_val < 1:
        raise ConfigError(f"dataset.num={num} leaves no training maze after the val/test fractions")
    codes = np.zeros(num, dtype=np.int64)
    perm = np.random.default_rng(seed + 1).permutation(num)
    codes[perm[:n_val]] = SPLITS["val"]
    codes[perm[n_val : n_val + n_test]] = SPLITS["test"]
    return codes


class GridMazes(DataModule):
    """DFS mazes with a per-maze wall-opening probability and exact Dijkstra labels (see :mod:`..mazes`)."""

    config: GridMazesConfig

    def __init__(self, config: GridMazesConfig | None = None) -> None:
        super().__init__(config or GridMazesConfig())
        self.mazes: MazeSet | None = None
        self.split_of: np.ndarray | None = None
        self.params: dict[str, Any] = {}
        self.generate_seconds = 0.0
        self._sets: dict[str, Any] = {}

    def _hint(self) -> str:
        c = self.config
        return f"mlcore data generate grid-mazes --size {c.size} --num {c.num} --actions {c.actions} --seed {c.seed}"

    def setup(self) -> None:
        """Generate the mazes (or read ``path``), then build the three splits."""
        cfg = self.config
        if cfg.path:
            if cfg.layout == "reference":
                self.mazes, self.split_of, self.params = load_reference(cfg.path)
            else:
                self.mazes, self.split_of, self.params = load_named(cfg.path, hint=self._hint())
        else:
            start = time.perf_counter()
            try:
                self.mazes = generate_mazes(cfg.num, cfg.size, cfg.actions, cfg.seed, cfg.min_reachable)
            except ValueError as exc:
                raise ConfigError(f"dataset: {exc}") from exc
            self.generate_seconds = time.perf_counter() - start
            self.split_of = split_codes(cfg.num, cfg.val_fraction, cfg.test_fraction, cfg.seed)
            self.params = {**attrs.asdict(cfg), "generator": "dfs+open", "format": "named"}
            self.params.pop("path")
            self.params.pop("layout")
        from torch.utils.data import TensorDataset

        for name in SPLITS:
            subset = self.mazes_of(name)
            self._sets[name] = TensorDataset(*maze_tensors(subset)) if len(subset) else None
        if self._sets["train"] is None:
            raise DataError(f"{cfg.path or 'dataset'}: the training split is empty")

    def mazes_of(self, name: str) -> MazeSet:
        """The labelled mazes of split ``name`` (``train``, ``val`` or ``test``)."""
        if self.mazes is None or self.split_of is None:
            self.prepare()
        assert self.mazes is not None and self.split_of is not None
        return self.mazes.subset(self.split_of == SPLITS[name])

    def train_set(self) -> Any:
        """``(maps, targets)`` of the training mazes."""
        return self.prepare()._sets["train"]

    def val_set(self) -> Any:
        """``(maps, targets)`` of the validation mazes (``None`` when ``val_fraction`` is 0)."""
        return self.prepare()._sets["val"]

    def test_set(self) -> Any:
        """``(maps, targets)`` of the test mazes."""
        return self.prepare()._sets["test"]

    def dimensions(self) -> dict[str, int]:
        """``{"num_actions": A}`` for the model config."""
        if self.mazes is not None:
            return {"num_actions": self.mazes.num_actions}
        return {"num_actions": self.config.actions}

    def file_name(self) -> str:
        """``mazes_m{size}_{A}abs-cc_n{num}_seed{seed}.npz``."""
        c = self.config
        return f"mazes_m{c.size}_{c.actions}abs-cc_n{c.num}_seed{c.seed}.npz"

    def generate(self, out_dir: Path) -> list[Path]:
        """Write all splits to one named ``.npz`` under ``out_dir`` (``mlcore data generate grid-mazes``)."""
        self.prepare()
        assert self.mazes is not None and self.split_of is not None
        path = Path(out_dir) / self.file_name()
        save_named(path, self.mazes, self.split_of, self.params)
        return [path]
