"""The toy model and data module (:mod:`mlcore.testing.toys`) and a test plugin for the trainer tests.

The test-only classes live in a synthetic module ``mlcore_trainer_testmods`` (registered in
``sys.modules``) so that component specs can name them by import path, exactly like a real plugin's.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from mlcore.components import ComponentSpec
from mlcore.data import DataModule
from mlcore.hookspecs import hookimpl
from mlcore.registry import Registry, set_registry
from mlcore.testing.toys import ToyData as TinyData
from mlcore.testing.toys import ToyDataConfig as TinyDataConfig  # noqa: F401  (test_trainer.py imports it from here)
from mlcore.testing.toys import ToyNet as TinyNet
from mlcore.testing.toys import ToyNetConfig as TinyConfig
from mlcore.training import Trainer, TrainerConfig
from mlcore.training.tracking import Tracker

MODULE = "mlcore_trainer_testmods"


#: the shared toys, imported above under the names these tests use (TinyNet: a 2 -> 8 -> 1 MLP,
#: TinyData: y = sin(x @ W), 96 samples, 72 for training)
TOYS = "mlcore.testing.toys"


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
            ComponentSpec("tiny", f"{TOYS}:ToyNet", f"{TOYS}:ToyNetConfig", summary="tiny MLP"),
            ComponentSpec("other", f"{MODULE}:OtherNet", f"{TOYS}:ToyNetConfig", summary="other tiny MLP"),
        ]

    @staticmethod
    @hookimpl
    def register_datasets() -> list[ComponentSpec]:
        return [ComponentSpec("tinydata", f"{TOYS}:ToyData", f"{TOYS}:ToyDataConfig", summary="tiny data")]

    @staticmethod
    @hookimpl
    def register_trackers() -> list[ComponentSpec]:
        return [ComponentSpec("recorder", f"{MODULE}:RecordingTracker", summary="records everything")]


_mod = types.ModuleType(MODULE)
for _obj in (OtherNet, LossHookNet, RecordingTracker):
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
