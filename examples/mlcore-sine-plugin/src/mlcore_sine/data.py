"""The ``sine`` dataset: noisy sine windows, predict the next value from the last ``window`` values."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from mlcore import DataError
from mlcore.config import in_range, positive
from mlcore.data import DataModule
from mlcore.io import atomic_write

FILE_NAME = "sine_windows.npz"


@attrs.define
class SineDataConfig:
    """Config of :class:`SineWindows`.

    Attributes:
        num_samples: number of windows.
        window: values the model sees (k); the pipeline sizes the model from it.
        noise: standard deviation of the Gaussian noise added to every value.
        min_period, max_period: range of the sine periods, in time steps.
        val_fraction, test_fraction: shares of the validation and test splits.
        seed: seed of the generator (same seed, same data).
        path: load the windows from this ``.npz`` (written by ``mlcore data generate sine``)
            instead of generating them; empty = generate in memory.
    """

    num_samples: int = attrs.field(default=4096, validator=in_range(16))
    window: int = attrs.field(default=16, validator=in_range(2, 1024))
    noise: float = attrs.field(default=0.05, validator=in_range(0.0))
    min_period: float = attrs.field(default=8.0, validator=positive)
    max_period: float = attrs.field(default=40.0, validator=positive)
    val_fraction: float = attrs.field(default=0.15, validator=in_range(0.0, 0.5))
    test_fraction: float = attrs.field(default=0.15, validator=in_range(0.0, 0.5))
    seed: int = 0
    path: str = ""

    def __attrs_post_init__(self) -> None:
        if self.max_period < self.min_period:
            raise ValueError(f"max_period={self.max_period} must be >= min_period={self.min_period}")


def make_windows(cfg: SineDataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``(inputs (N, window), targets (N, 1))`` as float32 arrays, seeded by ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    n, k = cfg.num_samples, cfg.window
    period = rng.uniform(cfg.min_period, cfg.max_period, size=(n, 1))
    phase = rng.uniform(0.0, 2.0 * math.pi, size=(n, 1))
    amplitude = rng.uniform(0.5, 1.5, size=(n, 1))
    t = np.arange(k + 1)[None, :]
    series = amplitude * np.sin(2.0 * math.pi * t / period + phase)
    series = series + cfg.noise * rng.standard_normal(series.shape)
    return series[:, :k].astype(np.float32), series[:, k:].astype(np.float32)


class SineWindows(DataModule):
    """Noisy sine windows, standardised with statistics of the training split.

    The statistics (``mean``, ``std``) are the data state stored in checkpoints, so a model
    evaluated later sees exactly the same scaling.
    """

    config: SineDataConfig

    def __init__(self, config: SineDataConfig | None = None) -> None:
        super().__init__(config or SineDataConfig())
        self.mean: float | None = None
        self.std: float | None = None
        self._splits: dict[str, TensorDataset | None] = {}

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        if not cfg.path:
            return make_windows(cfg)
        path = Path(cfg.path)
        if not path.is_file():
            raise DataError(
                f"dataset.path: {path} does not exist (write it with `mlcore data generate sine --out DIR`)"
            )
        try:
            with np.load(path) as f:
                x, y = f["inputs"], f["targets"]
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"dataset.path: {path} is not a sine windows file ({exc})") from None
        if x.ndim != 2 or x.shape[1] != cfg.window or y.shape != (x.shape[0], 1):
            raise DataError(f"dataset.path: {path} holds windows of shape {x.shape}, expected (N, {cfg.window})")
        return x.astype(np.float32), y.astype(np.float32)

    def setup(self) -> None:
        """Generate (or load) the windows, split them, and standardise with training statistics."""
        cfg = self.config
        x, y = self._arrays()
        n = x.shape[0]
        order = np.random.default_rng(cfg.seed + 1).permutation(n)
        n_test = round(cfg.test_fraction * n)
        n_val = round(cfg.val_fraction * n)
        test_idx, val_idx, train_idx = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        if self.mean is None or self.std is None:  # not restored from a checkpoint
            self.mean = float(x[train_idx].mean())
            self.std = float(x[train_idx].std()) or 1.0
        xs = torch.from_numpy((x - self.mean) / self.std)
        ys = torch.from_numpy((y - self.mean) / self.std)
        self._splits = {
            name: TensorDataset(xs[idx], ys[idx]) if len(idx) else None
            for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx))
        }

    def train_set(self) -> Dataset[Any]:
        """The training windows."""
        self.prepare()
        train = self._splits["train"]
        if train is None:
            raise DataError(f"dataset: no training windows left (num_samples={self.config.num_samples})")
        return train

    def val_set(self) -> Dataset[Any] | None:
        """The validation windows (used for early stopping and best.pt)."""
        self.prepare()
        return self._splits["val"]

    def test_set(self) -> Dataset[Any] | None:
        """The held-out windows the evaluator scores."""
        self.prepare()
        return self._splits["test"]

    def dimensions(self) -> dict[str, int]:
        """The model's input size: ``{"window": k}``."""
        return {"window": self.config.window}

    def generate(self, out_dir: Path) -> list[Path]:
        """Write the raw (unscaled) windows to ``<out_dir>/sine_windows.npz``."""
        x, y = make_windows(self.config)
        path = Path(out_dir) / FILE_NAME
        atomic_write(path, lambda fh: np.savez_compressed(fh, inputs=x, targets=y))
        return [path]

    def state_dict(self) -> dict[str, Any]:
        """The scaling statistics."""
        if self.mean is None:
            return {}
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the scaling statistics (before ``prepare``)."""
        if state:
            self.mean, self.std = float(state["mean"]), float(state["std"])
