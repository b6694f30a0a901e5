"""A toy plugin declared as a recipe, in a synthetic module (``mlcore_recipe_testmods``) so specs name it by path."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import attrs
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from mlcore.components import ComponentSpec
from mlcore.config import ComponentConfig, component_field
from mlcore.data import DataModule
from mlcore.evaluation.regression import RegressionEvaluatorConfig
from mlcore.hookspecs import hookimpl
from mlcore.pipelines import ExportConfig, Parts, Recipe, RecipePipeline
from mlcore.registry import Registry, set_registry
from mlcore.runs import RunContext
from mlcore.training import Callback, TrainerConfig

MODULE = "mlcore_recipe_testmods"


@attrs.define
class WavesConfig:
    """``num_samples`` windows of ``window`` values; the targets are the next ``horizon`` values."""

    num_samples: int = 96
    window: int = 4
    horizon: int = 1
    seed: int = 0


class Waves(DataModule):
    """Seeded sine windows (the data's own seed, not the run's)."""

    config: WavesConfig

    def setup(self) -> None:
        cfg = self.config
        g = torch.Generator().manual_seed(cfg.seed)
        phase = torch.rand(cfg.num_samples, 1, generator=g) * 6.28
        t = torch.arange(cfg.window + cfg.horizon, dtype=torch.float32)[None, :] * 0.5
        series = torch.sin(t + phase)
        full = TensorDataset(series[:, : cfg.window], series[:, cfg.window :])
        self._train, self._val = self.split(full, [0.75, 0.25])

    def train_set(self) -> Dataset[Any]:
        return self._train

    def val_set(self) -> Dataset[Any] | None:
        return self._val

    def dimensions(self) -> dict[str, int]:
        return {"window": self.config.window}


@attrs.define
class NetConfig:
    """``window`` comes from the data (linked); ``outputs`` does not."""

    window: int = 4
    outputs: int = 1
    hidden: int = 16


class Net(nn.Module):
    def __init__(self, config: NetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or NetConfig()
        self.net = nn.Sequential(nn.Linear(cfg.window, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, cfg.outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        return torch.randn(batch_size, self.config.window)


class StopAtEpoch3(Callback):
    """Presses Ctrl-C at the start of epoch 3 once per test; records the epochs it sees start."""

    armed: ClassVar[bool] = False
    seen: ClassVar[list[int]] = []

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        type(self).seen.append(epoch)
        if epoch == 3 and type(self).armed:
            type(self).armed = False
            raise KeyboardInterrupt


def _trainer() -> TrainerConfig:
    return TrainerConfig(epochs=4, batch_size=16, lr=1e-2, trackers=[], callbacks=[], progress=False)


@attrs.define
class WavesPipelineConfig:
    """One table per part; the loss may be any registered loss."""

    dataset: WavesConfig = attrs.field(factory=WavesConfig)
    model: NetConfig = attrs.field(factory=NetConfig)
    loss: ComponentConfig = component_field("loss", "mse")
    trainer: TrainerConfig = attrs.field(factory=_trainer)
    evaluator: RegressionEvaluatorConfig = attrs.field(factory=RegressionEvaluatorConfig)
    export: ExportConfig = attrs.field(factory=lambda: ExportConfig(enabled=False, format="torchscript"))


class WavesPipeline(RecipePipeline[WavesPipelineConfig]):
    recipe = Recipe(dataset="waves", model="net", evaluator="regression", title="waves")

    def extra_metrics(self, ctx: RunContext, parts: Parts[WavesPipelineConfig]) -> dict[str, float]:
        return {"window_seen": float(parts.model.config.window)}  # type: ignore[union-attr]

    def report_sections(self, ctx: RunContext, parts: Parts[WavesPipelineConfig], metrics: dict[str, float]):
        return [("Waves", f"window {parts.config.model.window}")]


class Plugin:
    @staticmethod
    @hookimpl
    def register_datasets() -> list[ComponentSpec]:
        return [ComponentSpec("waves", f"{MODULE}:Waves", f"{MODULE}:WavesConfig")]

    @staticmethod
    @hookimpl
    def register_models() -> list[ComponentSpec]:
        return [ComponentSpec("net", f"{MODULE}:Net", f"{MODULE}:NetConfig")]

    @staticmethod
    @hookimpl
    def register_callbacks() -> list[ComponentSpec]:
        return [ComponentSpec("stop_at_3", f"{MODULE}:StopAtEpoch3")]

    @staticmethod
    @hookimpl
    def register_pipelines() -> list[ComponentSpec]:
        return [
            ComponentSpec(
                "waves",
                f"{MODULE}:WavesPipeline",
                f"{MODULE}:WavesPipelineConfig",
                profiles={"quick": {"trainer": {"epochs": 4}}, "full": {"trainer": {"epochs": 8}}},
            )
        ]


@pytest.fixture
def toy_recipe() -> Iterator[Callable[[], Registry]]:
    """The toy plugin ``waves`` installed in a fresh registry (with the built-ins)."""
    module = types.ModuleType(MODULE)
    for name, value in list(globals().items()):
        if isinstance(value, type):
            setattr(module, name, value)
    sys.modules[MODULE] = module
    restore = set_registry(Registry.from_modules({"waves": Plugin}))
    StopAtEpoch3.armed, StopAtEpoch3.seen = False, []
    yield lambda: Registry.from_modules({"waves": Plugin})
    restore()
    sys.modules.pop(MODULE, None)
