"""Declarative component specs: what a plugin registers, without importing its code.

A :class:`ComponentSpec` names a component and points at its implementation and config
class by *import path* (``"package.module:attribute"``). Listing components therefore never
imports torch or a plugin's heavy dependencies; the import happens on first use
(:meth:`ComponentSpec.load`, :meth:`ComponentSpec.build`).
"""

from __future__ import annotations

import importlib
from typing import Any

import attrs

from mlcore.config import structure
from mlcore.errors import ConfigError, PluginError

#: The kinds of component a plugin can register, one hook each (see :mod:`mlcore.hookspecs`).
KINDS: tuple[str, ...] = (
    "dataset",
    "model",
    "loss",
    "trainer",
    "evaluator",
    "pipeline",
    "tracker",
    "callback",
)


def plural(kind: str) -> str:
    """``"loss"`` -> ``"losses"``, ``"model"`` -> ``"models"`` (for listings)."""
    return kind + ("es" if kind.endswith("s") else "s")


def import_object(path: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute.

    Raises :class:`PluginError` naming the path when the module is missing, raises anything
    (``SystemExit`` included) while it is imported, or lacks the attribute.
    """
    module_name, sep, attr_path = path.partition(":")
    if not sep or not module_name or not attr_path:
        raise PluginError(f"invalid import path {path!r}: expected 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {module_name!r} (from {path!r}): {exc}") from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a component module that raises at import is the plugin's bug, in one line
        text = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        raise PluginError(f"importing {module_name!r} (from {path!r}) raised {detail}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{module_name!r} has no attribute {attr_path!r} (from {path!r})") from None
    return obj


@attrs.frozen
class ComponentSpec:
    """One registered component.

    Args:
        name: unique name within its kind, e.g. ``"lstm"``.
        target: import path of the implementation, called as ``target(config)`` to build it.
        config: import path of its attrs config class, or ``None`` when it takes no config.
        summary: one line shown by ``mlcore list``.
        kind: set by the registry from the hook that returned the spec.
        plugin: set by the registry to the name of the plugin that registered it.
        profiles: pipelines only: named config overrides, e.g. ``{"quick": {...}, "full": {...}}``.
        extras: free-form, cheap metadata (e.g. the dataset a model is meant for).

    Example::

        ComponentSpec(
            name="lstm",
            target="my_plugin.models:LSTMModel",
            config="my_plugin.models:LSTMConfig",
            summary="Two-layer LSTM sequence regressor",
        )
    """

    name: str
    target: str
    config: str | None = None
    summary: str = ""
    kind: str = ""
    plugin: str = ""
    profiles: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    extras: dict[str, Any] = attrs.field(factory=dict)

    @property
    def qualified_name(self) -> str:
        """``kind/name``, as shown in messages."""
        return f"{self.kind}/{self.name}"

    def _import(self, path: str) -> Any:
        try:
            return import_object(path)
        except PluginError as exc:
            by = f" of plugin {self.plugin!r}" if self.plugin else ""
            raise PluginError(f"{self.qualified_name}{by}: {exc}") from exc.__cause__

    def load(self) -> Any:
        """Import and return the implementation (class or factory function)."""
        return self._import(self.target)

    def config_class(self) -> type | None:
        """Import and return the attrs config class, or ``None``.

        Only the config's module is imported (with its package's ``__init__``): keep config classes
        in a module that does not import torch and ``mlcore show`` stays fast.
        """
        if self.config is None:
            return None
        cls = self._import(self.config)
        if not attrs.has(cls):
            raise PluginError(f"{self.qualified_name}: config {self.config!r} is not an attrs class")
        return cls  # type: ignore[no-any-return]

    def default_config(self) -> Any:
        """An instance of the config class with every default, or ``None``."""
        cls = self.config_class()
        return None if cls is None else cls()

    def make_config(self, values: dict[str, Any] | None = None, *, where: str = "") -> Any:
        """Build the config from a plain mapping, strictly (unknown keys and bad values raise).

        ``where`` prefixes key names in error messages (e.g. ``"model."``).
        """
        cls = self.config_class()
        if cls is None:
            if values:
                raise ConfigError(f"{where or self.qualified_name}: {self.qualified_name} takes no options")
            return None
        return structure(cls, values or {}, where=where)

    def build(self, config: Any = None, /, **kwargs: Any) -> Any:
        """Build the component: ``target(config, **kwargs)``; ``config`` defaults to the defaults."""
        factory = self.load()
        if self.config is None:
            return factory(**kwargs)
        if config is None:
            config = self.default_config()
        elif isinstance(config, dict):
            config = self.make_config(config)
        return factory(config, **kwargs)
