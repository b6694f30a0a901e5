"""Plugin discovery and the component registry.

Plugins are found through the entry-point group ``mlcore.plugins``. Each entry point is loaded
in its own ``try``; a plugin that fails to import, declares an incompatible ``MLCORE_API``,
raises inside a hook or registers a name that is already taken is recorded as *failed* with
the reason and skipped — every other plugin keeps working. ``MLCORE_PLUGINS=a,b`` restricts
loading to those plugins, ``MLCORE_PLUGINS=`` (empty) loads none. Built-in components always
load, through the very same hooks (plugin name ``mlcore``).

Nothing here imports torch: specs only name import paths.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from importlib import metadata
from types import ModuleType
from typing import Any

import attrs
import pluggy

from mlcore import hookspecs
from mlcore._version import PLUGIN_API_VERSION, __version__
from mlcore.components import KINDS, ComponentSpec
from mlcore.errors import ComponentNotFoundError, did_you_mean

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mlcore.plugins"
ENV_VAR = "MLCORE_PLUGINS"
BUILTIN_PLUGIN = "mlcore"

#: hook name -> component kind
KIND_HOOKS: dict[str, str] = {
    "register_datasets": "dataset",
    "register_models": "model",
    "register_losses": "loss",
    "register_trainers": "trainer",
    "register_evaluators": "evaluator",
    "register_pipelines": "pipeline",
    "register_trackers": "tracker",
    "register_callbacks": "callback",
}


@attrs.define
class PluginInfo:
    """What the registry knows about one plugin: where it came from and whether it loaded."""

    name: str
    module: str
    version: str = ""
    distribution: str = ""
    api: str = ""
    status: str = "ok"  # "ok" | "failed" | "disabled"
    reason: str = ""
    components: list[ComponentSpec] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``mlcore plugins --json``)."""
        return {
            "name": self.name,
            "module": self.module,
            "version": self.version,
            "distribution": self.distribution,
            "api": self.api,
            "status": self.status,
            "reason": self.reason,
            "components": {
                kind: sorted(c.name for c in self.components if c.kind == kind)
                for kind in KINDS
                if any(c.kind == kind for c in self.components)
            },
        }


def api_compatible(requirement: str, version: str = PLUGIN_API_VERSION) -> bool:
    """Whether ``version`` satisfies a PEP 440 specifier such as ``">=1.0,<2"``."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(requirement).contains(version, prereleases=True)
    except InvalidSpecifier:
        return False


def _selected_plugins() -> set[str] | None:
    """Names from ``MLCORE_PLUGINS``; ``None`` when the variable is unset (load all)."""
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class Registry:
    """All loaded plugins and the components they registered.

    Use :func:`get_registry` for the process-wide instance; build your own with
    ``Registry.from_modules(...)`` in tests.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._components: dict[tuple[str, str], ComponentSpec] = {}

    # ----------------------------------------------------------------- loading
    @classmethod
    def discover(cls) -> Registry:
        """Load the built-in plugin and every selected entry-point plugin."""
        reg = cls()
        reg.add_module(BUILTIN_PLUGIN, _builtin_module(), version=__version__, distribution="mlcore")
        selected = _selected_plugins()
        eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        for ep in eps:
            dist = ep.dist.name if ep.dist is not None else ""
            version = ep.dist.version if ep.dist is not None else ""
            if selected is not None and ep.name not in selected:
                reg.plugins[ep.name] = PluginInfo(
                    ep.name, ep.value, version, dist, status="disabled", reason=f"not in {ENV_VAR}"
                )
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the CLI down
                reg._fail(PluginInfo(ep.name, ep.value, version, dist), f"import failed: {_one_line(exc)}")
                continue
            reg.add_module(ep.name, module, version=version, distribution=dist)
        if selected:
            for name in sorted(selected - set(reg.plugins)):
                reg.plugins[name] = PluginInfo(
                    name, "", status="failed", reason=f"named in {ENV_VAR} but not installed"
                )
        return reg

    @classmethod
    def from_modules(cls, modules: dict[str, ModuleType | object], *, builtin: bool = True) -> Registry:
        """A registry made of the given plugin objects (name -> module); for tests."""
        reg = cls()
        if builtin:
            reg.add_module(BUILTIN_PLUGIN, _builtin_module(), version=__version__, distribution="mlcore")
        for name, module in modules.items():
            reg.add_module(name, module)
        return reg

    def add_module(
        self, name: str, module: ModuleType | object, *, version: str = "", distribution: str = ""
    ) -> PluginInfo:
        """Register one plugin object, isolating every failure to that plugin."""
        info = PluginInfo(name, getattr(module, "__name__", repr(module)), version, distribution)
        info.api = str(getattr(module, "MLCORE_API", ""))
        if info.api and not api_compatible(info.api):
            return self._fail(info, f"needs mlcore plugin API {info.api}, this core offers {PLUGIN_API_VERSION}")
        try:
            self.pm.register(module, name=name)
        except Exception as exc:
            return self._fail(info, f"invalid hook implementation: {_one_line(exc)}")
        specs: list[ComponentSpec] = []
        for hook_name, kind in KIND_HOOKS.items():
            impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin_name == name]
            for impl in impls:
                try:
                    result = impl.function()
                except Exception as exc:
                    self.pm.unregister(name=name)
                    return self._fail(info, f"{hook_name} raised {_one_line(exc)}")
                for spec in result or []:
                    if not isinstance(spec, ComponentSpec):
                        self.pm.unregister(name=name)
                        return self._fail(info, f"{hook_name} returned {type(spec).__name__}, expected ComponentSpec")
                    specs.append(attrs.evolve(spec, kind=kind, plugin=name))
        seen: set[tuple[str, str]] = set()
        for spec in specs:
            key = (spec.kind, spec.name)
            owner = self._components.get(key)
            if owner is not None or key in seen:
                self.pm.unregister(name=name)
                by = owner.plugin if owner is not None else name
                return self._fail(info, f"duplicate {spec.kind} {spec.name!r} (already registered by plugin {by!r})")
            seen.add(key)
        for spec in specs:
            self._components[(spec.kind, spec.name)] = spec
        info.components = specs
        self.plugins[name] = info
        return info

    def _fail(self, info: PluginInfo, reason: str) -> PluginInfo:
        info.status, info.reason = "failed", reason
        self.plugins[info.name] = info
        log.warning("plugin %r skipped: %s", info.name, reason)
        return info

    # ----------------------------------------------------------------- queries
    def components(self, kind: str | None = None, plugin: str | None = None) -> list[ComponentSpec]:
        """Registered components, filtered by kind and/or plugin, sorted by kind then name."""
        out = [
            spec
            for spec in self._components.values()
            if (kind is None or spec.kind == kind) and (plugin is None or spec.plugin == plugin)
        ]
        return sorted(out, key=lambda s: (KINDS.index(s.kind), s.name))

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec of ``kind``/``name``; raises a one-line error listing close names."""
        if kind not in KINDS:
            raise ComponentNotFoundError(f"unknown component kind {kind!r} (allowed: {', '.join(KINDS)})")
        spec = self._components.get((kind, name))
        if spec is None:
            names = sorted(n for k, n in self._components if k == kind)
            hint = did_you_mean(name, names)
            available = ", ".join(names) if names else "none registered"
            raise ComponentNotFoundError(f"no {kind} named {name!r}{hint} (available: {available})")
        return spec

    def plugin(self, name: str) -> PluginInfo:
        """A loaded plugin by name; raises a one-line error if it is missing or failed."""
        info = self.plugins.get(name)
        if info is None:
            names = sorted(p for p, i in self.plugins.items() if i.status == "ok")
            hint = did_you_mean(name, names)
            raise ComponentNotFoundError(
                f"no plugin named {name!r}{hint} (installed: {', '.join(names)}); "
                f"install it with `pip install mlcore-{name}`"
            )
        if info.status != "ok":
            raise ComponentNotFoundError(f"plugin {name!r} is {info.status}: {info.reason}")
        return info

    def pipelines(self, plugin: str) -> list[ComponentSpec]:
        """The pipelines of a plugin, in registration order (the first is the default)."""
        return [s for s in self.plugin(plugin).components if s.kind == "pipeline"]

    def call_commands(self, cli: Any) -> None:
        """Let every loaded plugin add CLI commands; a failing plugin is reported, not fatal."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:
                info = self.plugins.get(impl.plugin_name)
                if info is not None:
                    for spec in info.components:
                        self._components.pop((spec.kind, spec.name), None)
                    info.components = []
                    self._fail(info, f"register_commands raised {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _builtin_module() -> ModuleType:
    from mlcore.builtin import plugin

    return plugin


_REGISTRY: Registry | None = None


def get_registry(*, refresh: bool = False) -> Registry:
    """The process-wide registry, discovered on first call (``refresh=True`` re-discovers)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = Registry.discover()
    return _REGISTRY


def set_registry(registry: Registry | None) -> Callable[[], None]:
    """Replace the process-wide registry (tests); returns a function that restores the old one."""
    global _REGISTRY
    old, _REGISTRY = _REGISTRY, registry

    def restore() -> None:
        global _REGISTRY
        _REGISTRY = old

    return restore


def build_named(kind: str, names: Iterable[str], base: type, *, where: str) -> list[Any]:
    """Build registered components of ``kind`` by name with default configs, checking each is a ``base``.

    ``where`` is the config key the names came from (e.g. ``"trainer.trackers"``); an unknown name
    is a one-line :class:`~mlcore.errors.ConfigError` naming it. Used for trackers and callbacks.
    """
    from mlcore.errors import ConfigError, MlcoreError, PluginError

    out = []
    for name in names:
        try:
            spec = get_registry().get(kind, name)
        except MlcoreError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        obj = spec.build()
        if not isinstance(obj, base):
            raise PluginError(f"{kind} {name!r} ({spec.target}) is not a {base.__name__} subclass")
        out.append(obj)
    return out


def iter_specs(specs: Iterable[ComponentSpec]) -> list[dict[str, Any]]:
    """JSON-ready rows for ``mlcore list --json``."""
    return [
        {
            "kind": s.kind,
            "name": s.name,
            "plugin": s.plugin,
            "summary": s.summary,
            "target": s.target,
            "config": s.config,
        }
        for s in specs
    ]
