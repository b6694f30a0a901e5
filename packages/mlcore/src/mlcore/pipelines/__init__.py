"""Pipelines: what ``mlcore run --plugin P`` runs.

- :class:`Pipeline`: the contract, ``Pipeline(config)``, :meth:`Pipeline.check`, :meth:`Pipeline.run`.
- :class:`Recipe`, :class:`RecipePipeline`, :class:`ExportConfig`, :class:`Parts`: a supervised
  pipeline declared as data (see :mod:`mlcore.pipelines.recipe`).
- :class:`RunContext` (from :mod:`mlcore.runs`): what ``check``/``run`` receive.

A pipeline with its own flow::

    import attrs
    from mlcore.pipelines import Pipeline

    @attrs.define
    class HelloConfig:
        greeting: str = "hello"

    class HelloPipeline(Pipeline):
        def run(self, ctx):
            ctx.write_text("report.md", f"# {self.config.greeting}\\n")
            return {"ok": 1.0}
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcore.pipelines.recipe import ExportConfig, Parts, Recipe, RecipePipeline, link_dimensions
    from mlcore.runs import RunContext

__all__ = ["ExportConfig", "Parts", "Pipeline", "Recipe", "RecipePipeline", "RunContext", "link_dimensions"]

_WHERE = {
    "ExportConfig": "mlcore.pipelines.recipe",
    "Parts": "mlcore.pipelines.recipe",
    "Recipe": "mlcore.pipelines.recipe",
    "RecipePipeline": "mlcore.pipelines.recipe",
    "RunContext": "mlcore.runs",
    "link_dimensions": "mlcore.pipelines.recipe",
}


def __getattr__(name: str) -> Any:
    """The recipe names and :class:`RunContext`, imported on first use (the recipe module imports this one)."""
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'mlcore.pipelines' has no attribute {name!r}")


class Pipeline:
    """Base class for pipelines: built as ``Pipeline(config)``, executed with :meth:`run`."""

    def __init__(self, config: Any = None) -> None:
        self.config = config

    def check(self, ctx: RunContext) -> None:
        """Check everything that can be checked before any work, and write nothing.

        Called by the core after the run directory is locked and before ``config.toml`` or any
        other file is written: build components, compare the model's output shape with the data's
        target shape on one batch, and raise :class:`mlcore.ConfigError` naming the config keys
        behind a mismatch. The default checks nothing.
        """

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Do the work, writing into ``ctx.out_dir``; return the headline metrics (flat dict)."""
        raise NotImplementedError
