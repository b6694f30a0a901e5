"""mlcore: a plugin-based PyTorch training framework for learned dynamics, planning and control.

The public Python API mirrors the CLI::

    import mlcore

    mlcore.get_registry().components("model")            # mlcore list model
    model = mlcore.build("model", "trc", {"size": "small"})
    result = mlcore.run("trc-control", profile="quick")   # mlcore run --plugin trc-control
    metrics = mlcore.evaluate("runs/x/checkpoints/best.pt")
    mlcore.export("runs/x/checkpoints/best.pt", format="onnx")

Importing ``mlcore`` is cheap: torch is imported only when a component is built or run.
"""

from __future__ import annotations

from typing import Any

from mlcore._version import PLUGIN_API_VERSION, __version__
from mlcore.components import ComponentSpec
from mlcore.errors import (
    CheckpointError,
    ComponentNotFoundError,
    ConfigError,
    DataError,
    MlcoreError,
    PluginError,
    RunInterrupted,
)
from mlcore.hookspecs import hookimpl
from mlcore.registry import get_registry

__all__ = [
    "PLUGIN_API_VERSION",
    "CheckpointError",
    "ComponentNotFoundError",
    "ComponentSpec",
    "ConfigError",
    "DataError",
    "MlcoreError",
    "PluginError",
    "RunInterrupted",
    "__version__",
    "build",
    "compare",
    "evaluate",
    "export",
    "generate_data",
    "get_registry",
    "hookimpl",
    "load_checkpoint",
    "run",
    "train",
]

_API = {"build", "run", "train", "evaluate", "export", "generate_data", "compare", "load_checkpoint"}


def __getattr__(name: str) -> Any:
    """Resolve the API functions lazily so ``import mlcore`` stays light."""
    if name in _API:
        from mlcore import api

        return getattr(api, name)
    raise AttributeError(f"module 'mlcore' has no attribute {name!r}")
