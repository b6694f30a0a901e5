"""A toy plugin (the kit's ToyData / ToyNet) and tiny experiment files for the experiment tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlcore.components import ComponentSpec
from mlcore.hookspecs import hookimpl
from mlcore.registry import Registry, set_registry

TRAIN_CONFIG = """
[dataset]
name = "toy"
num_samples = 96

[model]
name = "toynet"
hidden = 8

[loss]
name = "mse"

[trainer]
name = "supervised"
epochs = 3
batch_size = 16
lr = 0.01
trackers = []
callbacks = []
progress = false
plot = false

[evaluator]
name = "regression"
"""

EXPERIMENT = """
[experiment]
name = "toy-study"
out = "out"

[[stage]]
name = "train"
kind = "train"
config = "train.toml"
seeds = [0, 1]
set = ["trainer.lr={lr}"]
device = "cpu"
threads = 1

[[stage]]
name = "evaluate"
kind = "evaluate"
needs = ["train"]
select = "{select}"
top = {top}
device = "cpu"

[[stage]]
name = "compare"
kind = "compare"
needs = ["train"]

[[stage]]
name = "report"
kind = "report"
needs = ["evaluate", "compare"]
"""


class ToyPlugin:
    @staticmethod
    @hookimpl
    def register_datasets() -> list[ComponentSpec]:
        return [ComponentSpec("toy", "mlcore.testing.toys:ToyData", "mlcore.testing.toys:ToyDataConfig")]

    @staticmethod
    @hookimpl
    def register_models() -> list[ComponentSpec]:
        return [ComponentSpec("toynet", "mlcore.testing.toys:ToyNet", "mlcore.testing.toys:ToyNetConfig")]


@pytest.fixture
def toy_plugin() -> Iterator[Registry]:
    """The toy dataset and model registered (with the built-ins) for the duration of a test."""
    reg = Registry.from_modules({"toyplug": ToyPlugin})
    restore = set_registry(reg)
    yield reg
    restore()


@pytest.fixture
def experiment(tmp_path: Path, toy_plugin: Registry) -> Callable[..., Path]:
    """``experiment(lr=0.01, select="best", top=0, extra="")`` writes train.toml and experiment.toml."""

    def write(lr: float = 0.01, select: str = "best", top: int = 0, extra: str = "") -> Path:
        (tmp_path / "train.toml").write_text(textwrap.dedent(TRAIN_CONFIG), encoding="utf-8")
        path = tmp_path / "experiment.toml"
        path.write_text(EXPERIMENT.format(lr=lr, select=select, top=top) + extra, encoding="utf-8")
        return path

    return write
