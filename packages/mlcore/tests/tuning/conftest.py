"""A toy plugin for searches: the core's toy data and net under the generic ``train`` pipeline.

``tune_plugin`` installs it in-process (isolated registry); ``tune_site`` writes it as an installed
distribution for subprocesses (the CLI, parallel workers, Ray).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PLUGIN = """
from mlcore import ComponentSpec, hookimpl


class Plugin:
    @staticmethod
    @hookimpl
    def register_datasets():
        return [ComponentSpec("toy", "mlcore.testing.toys:ToyData", "mlcore.testing.toys:ToyDataConfig", summary="toy")]

    @staticmethod
    @hookimpl
    def register_models():
        toys = "mlcore.testing.toys"
        return [ComponentSpec("toynet", f"{toys}:ToyNet", f"{toys}:ToyNetConfig", summary="toy")]


register_datasets = Plugin.register_datasets
register_models = Plugin.register_models
"""

#: a base config that trains in well under a second per epoch
BASE: dict[str, Any] = {
    "run": {"plugin": "mlcore", "pipeline": "train", "seed": 0, "threads": 1},
    "dataset": {"name": "toy", "num_samples": 96},
    "model": {"name": "toynet", "hidden": 8},
    "loss": {"name": "mse"},
    "trainer": {"epochs": 6, "batch_size": 16, "lr": 0.01, "plot": False, "trackers": []},
}


def search_table(**overrides: Any) -> dict[str, Any]:
    """A small ``[search]`` table over the learning rate and hidden size (override any key)."""
    table: dict[str, Any] = {
        "metric": "best_metric",
        "report": "val_loss",
        "trials": 6,
        "sampler": "random",
        "pruner": "median",
        "startup_trials": 2,
        "warmup_epochs": 1,
        "space": {
            "trainer.lr": {"type": "log", "low": 1e-4, "high": 0.3},
            "model.hidden": {"type": "categorical", "choices": [4, 16]},
        },
    }
    table.update(overrides)
    return table


def config_with(**search: Any) -> dict[str, Any]:
    """The base config plus a ``[search]`` table."""
    import copy

    return {**copy.deepcopy(BASE), "search": search_table(**search)}


@pytest.fixture
def tune_plugin(tmp_path, monkeypatch, isolated_registry) -> Path:
    """The toy plugin in an isolated registry; the working directory is ``tmp_path``."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "tunetoy_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    monkeypatch.syspath_prepend(str(mods))
    sys.modules.pop("tunetoy_plugin", None)
    import importlib

    isolated_registry({"tunetoy": importlib.import_module("tunetoy_plugin").Plugin})
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("tunetoy_plugin", None)


@pytest.fixture
def tune_site(fake_site: Callable[..., Path]) -> Path:
    """A site directory where the toy plugin is an installed distribution (put it on PYTHONPATH)."""
    return fake_site("tunetoy", PLUGIN, module="tunetoy_plugin")
