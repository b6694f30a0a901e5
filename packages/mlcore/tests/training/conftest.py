"""Tiny models, data modules and a test plugin for the trainer tests.

The classes live in a synthetic module ``mlcore_trainer_testmods`` (registered in ``sys.modules``)
so that component specs can name them by import path, exactly like a real plugin's.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from mlcore.components import ComponentSpec
from mlcore.data import DataModule
from mlcore.hookspecs import hookimpl
from mlcore.registry import Registry, set_registry
from mlcore.training import Trainer, TrainerConfig
from mlcore.training.tracking import Tracker

MODULE = "mlcore_trainer_testmods"


@attrs.define
class TinyConfig:
    """Config of :class:`TinyNet`."""

    hidden: int = 8
    dropout: float = 0.0


class TinyNet(nn.Module):
    """2 -> hidden -> 1 MLP (dropout makes training consume the torch RNG)."""

    def __init__(self, config: TinyConfig | None = None) -> None:
        super().__init__()
        cfg = config or TinyConfig()
        self.net = nn.Sequential(nn.Linear(2, cfg.hidden), nn.Tanh(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class OtherNet(TinyNet):
    """A second registered model (for mismatch tests)."""


class LossHookNet(TinyNet):
    """Uses the ``compute_loss`` hook with dict batches and logs an extra value."""

    def __init__(self, config: TinyConfig | None = None) -> None:
        super().__init__(config)
        self.calls = {"train": 0, "eval": 0}

    def compute_loss(self, batch: dict[str, torch.Tensor], loss_fn: Any) -> tuple[torch.Tensor, dict[str, float]]:
        self.calls["train" if self.training else "eval"] += 1
        pred = self(batch["x"])
        mae = (pred - batch["y"]).abs().mean()
        return loss_fn(pred, batch["y"]), {"mae": float(mae.detach()), "is_train": float(self.training)}


@attrs.define
class TinyDataConfig:
    """Config of :class:`TinyData`."""

    num_samples: int = 96
    val: bool = True
    dict_batches: bool = False


class _DictSet(Dataset):  # type: ignore[type-arg]
    def __init__(self, base: Dataset) -> None:  # type: ignore[type-arg]
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = self.base[i]
        return {"x": x, "y": y}


class TinyData(DataModule):
    """y = sin(2 x0 - x1), 75/25 split; ``state_dict`` holds normalisation stats."""

    def __init__(self, config: TinyDataConfig | None = None) -> None:
        super().__init__(config or TinyDataConfig())

    def setup(self) -> None:
        g = torch.Generator().manual_seed(123)
        x = torch.randn(self.config.num_samples, 2, generator=g)
        y = torch.sin(2 * x[:, :1] - x[:, 1:])
        self.mean = x.mean(0)
        full: Dataset = TensorDataset(x, y)  # type: ignore[type-arg]
        if self.config.dict_batches:
            full = _DictSet(full)
        if self.config.val:
            self._train, self._val = self.split(full, [0.75, 0.25])
        else:
            self._train, self._val = full, None

    def train_set(self) -> Dataset:  # type: ignore[type-arg]
        return self._train

    def val_set(self) -> Dataset | None:  # type: ignore[type-arg]
        return self._val

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "n": self.config.num_samples}


class RecordingTracker(Tracker):
    """Keeps everything it is sent; instances are collected in ``RecordingTracker.instances``."""

    instances: ClassVar[list[RecordingTracker]] = []

    def __init__(self) -> None:
        self.started: tuple[Path, dict[str, Any]] | None = None
        self.scalars: list[tuple[int, dict[str, float]]] = []
        self.histograms: list[tuple[str, torch.Tensor, int]] = []
        self.closed = False
        RecordingTracker.instances.append(self)

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        self.started = (run_dir, config)

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        self.scalars.append((step, dict(values)))

    def log_histogram(self, name: str, values: torch.Tensor, step: int) -> None:
        self.histograms.append((name, values.clone(), step))

    def close(self) -> None:
        self.closed = True


class _TestPlugin:
    """A plugin object registering the tiny components (plugin name ``testplug``)."""

    @staticmethod
    @hookimpl
    def register_models() -> list[ComponentSpec]:
        return [
            ComponentSpec("tiny", f"{MODULE}:TinyNet", f"{MODULE}:TinyConfig", summary="tiny MLP"),
            ComponentSpec("other", f"{MODULE}:OtherNet", f"{MODULE}:TinyConfig", summary="other tiny MLP"),
        ]

    @staticmethod
    @hookimpl
    def register_datasets() -> list[ComponentSpec]:
        return [ComponentSpec("tinydata", f"{MODULE}:TinyData", f"{MODULE}:TinyDataConfig", summary="tiny data")]

    @staticmethod
    @hookimpl
    def register_trackers() -> list[ComponentSpec]:
        return [ComponentSpec("recorder", f"{MODULE}:RecordingTracker", summary="records everything")]


_mod = types.ModuleType(MODULE)
for _obj in (TinyConfig, TinyNet, OtherNet, LossHookNet, TinyDataConfig, TinyData, RecordingTracker):
    setattr(_mod, _obj.__name__, _obj)
sys.modules[MODULE] = _mod


@pytest.fixture
def test_registry() -> Iterator[Registry]:
    """The built-in registry plus the ``testplug`` plugin, installed process-wide for the test."""
    reg = Registry.from_modules({"testplug": _TestPlugin()})
    assert reg.plugins["testplug"].status == "ok", reg.plugins["testplug"].reason
    restore = set_registry(reg)
    RecordingTracker.instances.clear()
    yield reg
    restore()


def quiet_config(**overrides: Any) -> TrainerConfig:
    """A fast TrainerConfig: no trackers, callbacks, plot or progress unless overridden."""
    values: dict[str, Any] = {
        "epochs": 3,
        "batch_size": 16,
        "lr": 1e-2,
        "scheduler": "none",
        "trackers": [],
        "callbacks": [],
        "plot": False,
        "progress": False,
    }
    values.update(overrides)
    return TrainerConfig(**values)


@pytest.fixture
def fit_tiny(tmp_path: Path, test_registry: Registry) -> Callable[..., Any]:
    """``fit_tiny(run="a", model=None, data=None, cbs=(), seed=0, **config)`` -> (result, model, run_dir)."""
    from mlcore.training.checkpoint import make_meta

    def run(
        run: str = "run",
        *,
        model: nn.Module | None = None,
        data: DataModule | None = None,
        cbs: tuple[Any, ...] = (),
        seed: int = 0,
        loss: Any = None,
        **config: Any,
    ) -> tuple[Any, nn.Module, Path]:
        torch.manual_seed(7)
        model = model if model is not None else TinyNet(TinyConfig(dropout=0.2))
        data = data if data is not None else TinyData()
        data.prepare()
        name = "tiny" if type(model) in (TinyNet, LossHookNet) else "other"
        cfg = TinyConfig(dropout=model.net[2].p)  # type: ignore[index]
        meta = make_meta(plugin="testplug", components={"model": (name, cfg), "loss": ("mse", None)}, data=data)
        trainer = Trainer(quiet_config(**config), device="cpu", seed=seed, callbacks=cbs)
        run_dir = tmp_path / run
        result = trainer.fit(model, data, loss if loss is not None else nn.MSELoss(), run_dir=run_dir, meta=meta)
        return result, model, run_dir

    return run
