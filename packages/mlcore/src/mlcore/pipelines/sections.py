"""Component sections of pipeline configs: a ``[model]`` table that names a component and holds its config.

In TOML::

    [model]
    name = "lstm"      # a registered model
    hidden = 64        # the LSTM config's own fields, beside the name

:func:`component_field` declares such a section on a pipeline config class; :func:`structure` of
:mod:`mlcore.config` calls the converter the field carries (:func:`structure_component`), which
looks the component up in the registry and builds its config strictly. Keeping this here, beside
the pipelines that use it, keeps :mod:`mlcore.config` free of the registry (imports flow one way).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from mlcore.components import ComponentSpec
from mlcore.config import STRUCTURE, unstructure
from mlcore.errors import ConfigError
from mlcore.registry import get_registry

__all__ = ["ComponentConfig", "component_field", "structure_component"]


@attrs.define
class ComponentConfig:
    """A config section that names a registered component and holds its config.

    In TOML: ``[model]`` with ``name = "lstm"`` and the LSTM config's fields beside it.
    """

    name: str
    config: Any = None

    def spec(self, kind: str) -> ComponentSpec:
        """The registry spec of this component."""
        return get_registry().get(kind, self.name)

    def to_table(self) -> dict[str, Any]:
        """The TOML table: ``name`` and the component's own fields beside it."""
        inner = unstructure(self.config) if self.config is not None else {}
        return {"name": self.name, **inner}


def structure_component(kind: str, data: Any, where: str) -> ComponentConfig:
    """Build a :class:`ComponentConfig` of ``kind`` from a table (or a bare name); ``where`` prefixes errors."""
    if isinstance(data, ComponentConfig):
        return data
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where.rstrip('.')}: expected a table with a 'name' key, got {data!r}")
    values = dict(data)
    name = values.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"{where}name is required: the {kind} to use (see `mlcore list {kind}`)")
    try:
        spec = get_registry().get(kind, name)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where}name: {exc}") from None
    return ComponentConfig(name=name, config=spec.make_config(values, where=where))


def component_field(kind: str, default: str | None = None, defaults: Mapping[str, Any] | None = None) -> Any:
    """An attrs field holding a :class:`ComponentConfig` of ``kind`` (optional if ``default`` is None).

    ``defaults`` overrides the component's own defaults, e.g. ``component_field("loss", "huber",
    {"delta": 0.5})``.
    """

    def convert(value: Any, where: str) -> ComponentConfig:
        return structure_component(kind, value, where)

    meta = {"mlcore_component": kind, STRUCTURE: convert}
    if default is None:
        return attrs.field(default=None, metadata=meta)
    values = dict(defaults or {})
    return attrs.field(factory=lambda: structure_component(kind, {"name": default, **values}, ""), metadata=meta)
