"""Entry point of the diffplan-vins plugin: component specs only (no torch or numpy import here)."""

from __future__ import annotations

from mlcore.components import ComponentSpec
from mlcore.hookspecs import hookimpl

from mlcore_diffplan_vins.models import MODEL_SPECS

MLCORE_API = ">=1.0,<2"


@hookimpl
def register_models() -> list[ComponentSpec]:
    """Every grid planner of :data:`mlcore_diffplan_vins.models.MODEL_SPECS`."""
    return [
        ComponentSpec(name, target, config, summary=summary, extras={"dataset": "grid-mazes"})
        for name, target, config, summary in MODEL_SPECS
    ]
