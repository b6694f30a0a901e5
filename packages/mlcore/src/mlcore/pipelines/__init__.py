"""The pipeline contract: a named end-to-end recipe run by ``mlcore run --plugin P``.

Example::

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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcore.runs import RunContext


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
