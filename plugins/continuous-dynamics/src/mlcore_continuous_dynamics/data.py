"""The ``vehicle-episodes`` dataset: simulated quadrotor episodes in weather, cut into windows.

``mlcore data generate vehicle-episodes --episodes 200 --seed 0 --out data/vehicle`` writes

- ``episodes.npz``: ``states (E, T+1, 12)``, ``actions (E, T, 4)``, ``weather (E, T+1, 6)``,
  ``times (E, T+1)``, ``waypoints (E, T, 3)`` (raw SI units);
- ``manifest.json``: the generating config, the simulator's rates, every episode's weather
  (mean wind, gust strength and time constant, temperature, pressure, density, rain) and the
  train/val/test episode lists;
- ``normalisation.json``: mean and std of states, actions and weather over the training episodes.

Episodes are split into train/val/test **by episode** (a window never shares an episode with a
window of another split). An item is ``(inputs, target)`` with normalised tensors::

    inputs = {"states": (L, 12), "actions": (L + H - 1, 4), "weather": (L + H - 1, 6), "dt": (L + H - 1,)}
    target = (12,) for the one-step splits (H = 1), (H, 12) for :meth:`VehicleEpisodes.rollout_set`

``actions[i]``, ``weather[i]`` and ``dt[i]`` (seconds to the next sample) belong to the state at
window position ``i``; the last state of the window is time ``t``, the target starts at ``t + 1``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, cast

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset

from mlcore.data import DataModule
from mlcore.errors import ConfigError, DataError
from mlcore.io import atomic_write, atomic_write_json
from mlcore_continuous_dynamics.configs import VehicleEpisodesConfig
from mlcore_continuous_dynamics.sim import (
    ACTION_NAMES,
    STATE_GROUPS,
    STATE_NAMES,
    WEATHER_FACTORS,
    WEATHER_NAMES,
    QuadrotorParams,
    sample_weather,
    simulate_episodes,
)

log = logging.getLogger(__name__)

__all__ = [
    "DATA_FILE",
    "MANIFEST_FILE",
    "NORM_FILE",
    "VehicleEpisodes",
    "Windows",
    "generate_episodes",
    "split_episodes",
]

DATA_FILE = "episodes.npz"
MANIFEST_FILE = "manifest.json"
NORM_FILE = "normalisation.json"
#: Config fields that decide what is simulated (read back from the manifest when loading files).
GENERATION_FIELDS = (
    "episodes",
    "episode_seconds",
    "sample_rate",
    "substeps",
    "time_jitter",
    "max_wind",
    "max_gust",
    "seed",
)
ARRAYS = {"states": 12, "actions": 4, "weather": 6, "times": None, "waypoints": 3}
COMMAND = "mlcore data generate vehicle-episodes --out DIR"


def generate_episodes(cfg: VehicleEpisodesConfig) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Simulate ``cfg.episodes`` episodes; returns the arrays and each episode's weather record."""
    rng = np.random.default_rng(cfg.seed)
    weathers = [sample_weather(rng, max_wind=cfg.max_wind, max_gust=cfg.max_gust) for _ in range(cfg.episodes)]
    steps = max(2, round(cfg.episode_seconds * cfg.sample_rate))
    arrays = simulate_episodes(
        weathers, steps=steps, dt=1.0 / cfg.sample_rate, substeps=cfg.substeps, rng=rng, time_jitter=cfg.time_jitter
    )
    return arrays, [w.record() for w in weathers]


def split_episodes(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[int]]:
    """Disjoint train/val/test episode lists (a seeded permutation; each split gets at least one)."""
    order = np.random.default_rng(seed + 7919).permutation(n).tolist()
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    if n - n_test - n_val < 1:
        raise ConfigError(f"dataset.episodes={n} is too few for a train, val and test split (at least 3)")
    return {
        "train": sorted(order[n_test + n_val :]),
        "val": sorted(order[n_test : n_test + n_val]),
        "test": sorted(order[:n_test]),
    }


class Windows(Dataset[Any]):
    """Windows of normalised episodes: history of ``length`` states, ``horizon`` target states."""

    def __init__(
        self, tensors: dict[str, torch.Tensor], episodes: list[int], *, length: int, horizon: int, stride: int
    ) -> None:
        self.tensors = tensors
        self.length = length
        self.horizon = horizon
        steps = tensors["actions"].shape[1]
        last = steps - length - horizon + 1  # s + length + horizon - 1 <= steps
        self.index = [(e, s) for e in episodes for s in range(0, last + 1, stride)]
        self.episodes = list(episodes)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        e, s = self.index[i]
        t = self.tensors
        end = s + self.length + self.horizon - 1
        inputs = {
            "states": t["states"][e, s : s + self.length],
            "actions": t["actions"][e, s:end],
            "weather": t["weather"][e, s:end],
            "dt": t["dt"][e, s:end],
        }
        target = t["states"][e, s + self.length : end + 1]
        return inputs, target[0] if self.horizon == 1 else target


class VehicleEpisodes(DataModule):
    """Quadrotor episodes in weather (simulated, or read from ``path``), split by episode, cut into windows."""

    config: VehicleEpisodesConfig

    def __init__(self, config: VehicleEpisodesConfig | None = None) -> None:
        super().__init__(config or VehicleEpisodesConfig())
        self.raw: dict[str, np.ndarray] = {}
        self.weather_records: list[dict[str, Any]] = []
        self.splits: dict[str, list[int]] = {}
        self.stats: dict[str, np.ndarray] = {}
        self._given_stats: dict[str, np.ndarray] | None = None
        self.tensors: dict[str, torch.Tensor] = {}
        self._sets: dict[str, Windows] = {}

    # ------------------------------------------------------------------ data
    def setup(self) -> None:
        cfg = self.config
        if cfg.path:
            self.raw, manifest = load_episodes(Path(cfg.path))
            self.weather_records = manifest["weather"]
            self.splits = {k: [int(e) for e in v] for k, v in manifest["splits"].items()}
        else:
            self.raw, self.weather_records = generate_episodes(cfg)
            self.splits = split_episodes(cfg.episodes, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        steps = self.raw["actions"].shape[1]
        if steps < cfg.sequence_length + 1:
            raise ConfigError(
                f"dataset.sequence_length={cfg.sequence_length} needs episodes of more than {cfg.sequence_length} "
                f"samples; these have {steps} (raise dataset.episode_seconds)"
            )
        self.stats = self._given_stats or normalisation_stats(self.raw, self.splits["train"])
        self.tensors = self._normalised()

    def _normalised(self) -> dict[str, torch.Tensor]:
        st, raw = self.stats, self.raw
        weather = (raw["weather"] - st["weather_mean"]) / st["weather_std"]
        for factor in self.config.withhold:
            weather[..., WEATHER_FACTORS[factor]] = 0.0  # the training mean: no information left
        out = {
            "states": (raw["states"] - st["state_mean"]) / st["state_std"],
            "actions": (raw["actions"] - st["action_mean"]) / st["action_std"],
            "weather": weather,
            "dt": np.diff(raw["times"], axis=1),
        }
        return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in out.items()}

    def windows(self, split: str, horizon: int = 1, stride: int | None = None) -> Windows:
        """The windows of one split (``train``/``val``/``test``) with ``horizon`` target steps."""
        self.prepare()
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} (train, val, test)")
        horizon_max = self.raw["actions"].shape[1] - self.config.sequence_length
        if horizon > horizon_max:
            raise ConfigError(
                f"a rollout of {horizon} steps after a window of {self.config.sequence_length} does not fit episodes "
                f"of {self.raw['actions'].shape[1]} samples (lower evaluator.horizon or raise dataset.episode_seconds)"
            )
        key = f"{split}/{horizon}/{stride}"
        if key not in self._sets:
            self._sets[key] = Windows(
                self.tensors,
                self.splits[split],
                length=self.config.sequence_length,
                horizon=horizon,
                stride=stride or self.config.stride,
            )
        return self._sets[key]

    def train_set(self) -> Windows:
        return self.windows("train")

    def val_set(self) -> Windows:
        return self.windows("val")

    def test_set(self) -> Windows:
        return self.windows("test")

    def rollout_set(self, horizon: int | None = None, split: str = "test") -> Windows:
        """Windows with ``horizon`` (default the config's) target steps and the matching future inputs."""
        return self.windows(split, horizon or self.config.horizon)

    def dimensions(self) -> dict[str, int]:
        return {"state_dim": 12, "action_dim": 4, "weather_dim": 6, "sequence_length": self.config.sequence_length}

    @property
    def nominal_dt(self) -> float:
        """The regular sample interval (s)."""
        return 1.0 / self.config.sample_rate

    # ------------------------------------------------------------------ (de)normalisation
    def denormalise_states(self, states: torch.Tensor) -> np.ndarray:
        """Normalised states (any leading shape) in SI units."""
        return states.double().numpy() * self.stats["state_std"] + self.stats["state_mean"]

    def normalise_states(self, states: np.ndarray) -> torch.Tensor:
        """SI states as normalised float32 tensors."""
        return torch.as_tensor((states - self.stats["state_mean"]) / self.stats["state_std"], dtype=torch.float32)

    def raw_inputs(self, windows: Windows) -> dict[str, np.ndarray]:
        """The SI values behind ``windows``: last history state, future actions, weather and intervals."""
        length, horizon = windows.length, windows.horizon
        rows = np.array(windows.index)
        e, s = rows[:, 0], rows[:, 1]
        t = s + length - 1
        steps = np.arange(horizon)
        idx = t[:, None] + steps[None, :]
        return {
            "state": self.raw["states"][e, t],
            "actions": self.raw["actions"][e[:, None], idx],
            "weather": self.raw["weather"][e[:, None], idx],
            "intervals": np.diff(self.raw["times"], axis=1)[e[:, None], idx],
        }

    def factor_columns(self) -> dict[str, list[int]]:
        """Weather columns of each causal factor (for permutation importance)."""
        return {k: list(v) for k, v in WEATHER_FACTORS.items()}

    # ------------------------------------------------------------------ files and state
    def generate(self, out_dir: Path) -> list[Path]:
        """Write ``episodes.npz``, ``manifest.json`` and ``normalisation.json`` under ``out_dir``."""
        cfg = self.config
        if cfg.path:
            raise ConfigError("dataset.path is set: generate writes new episodes, so leave it empty")
        self.prepare()
        out = Path(out_dir)
        data_path = out / DATA_FILE
        atomic_write(data_path, lambda fh: cast(Any, np.savez_compressed)(fh, **self.raw))
        manifest = {
            "format": 1,
            "config": {k: getattr(cfg, k) for k in GENERATION_FIELDS},
            "simulator": {
                "integrator": "classical RK4",
                "sample_rate_hz": cfg.sample_rate,
                "physics_rate_hz": cfg.sample_rate * cfg.substeps,
                "params": attrs.asdict(QuadrotorParams()),
            },
            "state_names": list(STATE_NAMES),
            "action_names": list(ACTION_NAMES),
            "weather_names": list(WEATHER_NAMES),
            "state_groups": {k: [v.start, v.stop] for k, v in STATE_GROUPS.items()},
            "steps": int(self.raw["actions"].shape[1]),
            "splits": self.splits,
            "weather": self.weather_records,
        }
        manifest_path = atomic_write_json(out / MANIFEST_FILE, manifest)
        norm_path = atomic_write_json(out / NORM_FILE, {k: v.tolist() for k, v in self.stats.items()})
        return [data_path, manifest_path, norm_path]

    def state_dict(self) -> dict[str, Any]:
        return {"stats": {k: v.tolist() for k, v in self.stats.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        stats = state.get("stats")
        if stats:
            self._given_stats = {k: np.asarray(v, dtype=np.float64) for k, v in stats.items()}


def normalisation_stats(raw: dict[str, np.ndarray], train: list[int]) -> dict[str, np.ndarray]:
    """Per-dimension mean and std of states, actions and weather over the training episodes."""
    out = {}
    for key, name in (("states", "state"), ("actions", "action"), ("weather", "weather")):
        values = raw[key][train].reshape(-1, raw[key].shape[-1])
        out[f"{name}_mean"] = values.mean(axis=0)
        out[f"{name}_std"] = np.maximum(values.std(axis=0), 1e-6)
    return out


def load_episodes(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and check ``episodes.npz`` and ``manifest.json``; a problem is a one-line :class:`DataError`."""
    data_path, manifest_path = directory / DATA_FILE, directory / MANIFEST_FILE
    for path in (data_path, manifest_path):
        if not path.is_file():
            raise DataError(f"{path} not found: create it with `{COMMAND.replace('DIR', str(directory))}`")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        with np.load(data_path) as npz:
            raw = {k: np.asarray(npz[k], dtype=np.float64) for k in ARRAYS}
    except KeyError as exc:
        raise DataError(f"{data_path}: array {exc} is missing (regenerate with `{COMMAND}`)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{data_path if 'npz' in str(exc) else manifest_path}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or not {"splits", "weather"} <= set(manifest):
        raise DataError(f"{manifest_path}: not a vehicle-episodes manifest (regenerate with `{COMMAND}`)")
    n, steps = raw["actions"].shape[:2] if raw["actions"].ndim == 3 else (0, 0)
    expected: dict[str, tuple[int, ...]] = {
        "states": (n, steps + 1, 12),
        "actions": (n, steps, 4),
        "weather": (n, steps + 1, 6),
    }
    expected.update({"times": (n, steps + 1), "waypoints": (n, steps, 3)})
    for key, shape in expected.items():
        if raw[key].shape != shape:
            raise DataError(f"{data_path}: {key} has shape {raw[key].shape}, expected {shape}")
        if not np.isfinite(raw[key]).all():
            bad = int((~np.isfinite(raw[key])).sum())
            raise DataError(f"{data_path}: {key} holds {bad} NaN/inf values")
    if np.any(np.diff(raw["times"], axis=1) <= 0):
        raise DataError(f"{data_path}: times must increase within every episode")
    episodes = {int(e) for split in manifest["splits"].values() for e in split}
    if n == 0 or not episodes or max(episodes) >= n:
        raise DataError(f"{manifest_path}: splits name episodes outside the {n} in {data_path.name}")
    return raw, manifest
