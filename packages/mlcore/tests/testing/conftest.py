"""A toy plugin for the kit's own tests: the shared toys plus deliberately broken components.

Every broken component plants one bug the kit must catch; the good ones are the shared
:mod:`mlcore.testing.toys` registered by import path, as a real plugin would.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from mlcore.registry import Registry, set_registry
from mlcore.testing import PluginContract

TOY_MODULE = "mlcore_toy_contract_plugin"

TOY_SOURCE = '''
"""A toy plugin with good and deliberately broken components."""
import torch
from torch import nn
from torch.utils.data import TensorDataset

from mlcore import ComponentSpec, hookimpl
from mlcore.evaluation import Evaluator
from mlcore.testing.toys import ToyData, ToyNet

MLCORE_API = ">=1.0,<2"
M = __name__
T = "mlcore.testing.toys"


class BadStateData(ToyData):
    def state_dict(self):
        return {"scale": object()}


class EmptyData(ToyData):
    def train_set(self):
        return TensorDataset(torch.zeros(0, 2), torch.zeros(0, 1))


class FixedSeedData(ToyData):
    """Ignores config.seed: always the data of seed 0."""

    def generator(self):
        return torch.Generator().manual_seed(0)


class GlobalRngData(ToyData):
    """Draws from the global torch RNG instead of a generator seeded by config.seed."""

    def generator(self):
        return torch.default_generator


class NaNModel(ToyNet):
    def forward(self, x):
        return self.net(x) * float("nan")


class Stuck(ToyNet):
    """Gradients never reach the weights that matter: the loss cannot go down."""

    def forward(self, x):
        return self.net(x).detach() + 0.0 * self.net[0].bias.sum()


class Forgetful(ToyNet):
    """Depends on a random non-persistent buffer, so a reloaded copy answers differently."""

    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("shift", torch.randn(1), persistent=False)

    def forward(self, x):
        return self.net(x) + self.shift


class BadExample(ToyNet):
    def example_input(self, batch_size=2):
        return torch.randn(batch_size, 5)


class OwnLoss(ToyNet):
    """Owns its loss, returning extra logged values."""

    def compute_loss(self, batch, loss_fn):
        x, y = batch
        loss = loss_fn(self(x), y)
        return loss, {"half": float(loss) / 2}


class Squeezed(ToyNet):
    """Returns (N,) for targets of (N, 1): the plugin loss broadcasts them to (N, N) and still trains."""

    def forward(self, x):
        return self.net(x).squeeze(-1)


class BatchCentred(ToyNet):
    """Centres the inputs with the batch mean, in eval mode too: samples mix across the batch."""

    def forward(self, x):
        return self.net(x - x.mean(0, keepdim=True))


class GoodLoss(nn.Module):
    def forward(self, pred, target):
        return ((pred - target) ** 2).mean()


class VectorLoss(nn.Module):
    def forward(self, pred, target):
        return (pred - target) ** 2


class GoodEval(Evaluator):
    metrics = ("mse",)

    def compute(self, predictions, targets):
        return {"mse": ((predictions - targets) ** 2).mean()}


class ForgetsMetric(Evaluator):
    metrics = ("mse", "mae")

    def evaluate(self, model, data, *, device="cpu", out_dir=None):
        return {"mse": 0.1}


class Pipe:
    def __init__(self, config):
        self.config = config


@hookimpl
def register_datasets():
    data = lambda name, target, summary: ComponentSpec(name, target, f"{T}:ToyDataConfig", summary=summary)
    return [
        data("lin", f"{T}:ToyData", "toy data"),
        data("badstate", f"{M}:BadStateData", "unsaveable state"),
        data("empty", f"{M}:EmptyData", "no training data"),
        data("fixedseed", f"{M}:FixedSeedData", "ignores its seed"),
        data("globalrng", f"{M}:GlobalRngData", "draws from the global RNG"),
    ]


@hookimpl
def register_models():
    def spec(name, target, loss=None):
        extras = {"dataset": "lin", **({"loss": loss} if loss else {})}
        return ComponentSpec(name, target, f"{T}:ToyNetConfig", summary=name, extras=extras)

    return [spec("good", f"{T}:ToyNet", "goodloss"), spec("nan", f"{M}:NaNModel"), spec("stuck", f"{M}:Stuck"),
            spec("forgetful", f"{M}:Forgetful"), spec("badexample", f"{M}:BadExample"),
            spec("ownloss", f"{M}:OwnLoss"), spec("squeezed", f"{M}:Squeezed", "goodloss"),
            spec("batchcentred", f"{M}:BatchCentred", "goodloss")]


@hookimpl
def register_losses():
    return [ComponentSpec("goodloss", f"{M}:GoodLoss", summary="mse"),
            ComponentSpec("vectorloss", f"{M}:VectorLoss", summary="not reduced")]


@hookimpl
def register_evaluators():
    return [ComponentSpec("goodeval", f"{M}:GoodEval", summary="mse", extras={"model": "good"}),
            ComponentSpec("forgets", f"{M}:ForgetsMetric", summary="forgets mae", extras={"model": "good"})]


@hookimpl
def register_pipelines():
    return [
        ComponentSpec("pipe", f"{M}:Pipe", f"{T}:ToyNetConfig", summary="ok",
                      profiles={"quick": {"hidden": 4}, "full": {"hidden": 50}}),
        ComponentSpec("noprofiles", f"{M}:Pipe", f"{T}:ToyNetConfig", summary="no full", profiles={"quick": {}}),
        ComponentSpec("badprofile", f"{M}:Pipe", f"{T}:ToyNetConfig", summary="typo",
                      profiles={"quick": {"hiden": 1}, "full": {"hidden": "many"}}),
    ]
'''


@pytest.fixture(scope="session")
def toy_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The toy plugin's entry-point module, importable by name (its specs name it)."""
    folder = tmp_path_factory.mktemp("toy")
    (folder / f"{TOY_MODULE}.py").write_text(textwrap.dedent(TOY_SOURCE), encoding="utf-8")
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(TOY_MODULE)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(TOY_MODULE, None)


@pytest.fixture
def toy_registry(toy_module: Any) -> Iterator[Registry]:
    """The built-in components plus the toy plugin (name ``toy``), installed process-wide."""
    reg = Registry.from_modules({"toy": toy_module})
    assert reg.plugins["toy"].status == "ok", reg.plugins["toy"].reason
    restore = set_registry(reg)
    try:
        yield reg
    finally:
        restore()


class Toy(PluginContract):
    """The kit's building blocks on the toy plugin (not collected: no ``Test`` prefix)."""

    plugin = "toy"
    config_overrides: ClassVar = {"dataset/lin": {"num_samples": 48}}


@pytest.fixture
def toy(toy_registry: Registry) -> Toy:
    """A :class:`PluginContract` on the toy plugin, for calling the plain checks on its components."""
    return Toy()
