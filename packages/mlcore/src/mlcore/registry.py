"""Plugin discovery and the component registry.

Plugins are found through the entry-point group ``mlcore.plugins``. Each entry point is loaded
in its own guard; a plugin that fails to import (any exception, ``SystemExit`` included), declares
an incompatible ``MLCORE_API``, raises inside a hook, returns something other than a list of
:class:`~mlcore.components.ComponentSpec`, re-registers a built-in name or tries to replace a core
CLI command is recorded as *failed* with the reason, unregistered from pluggy and skipped — every
other plugin keeps working. ``MLCORE_PLUGINS=a,b`` restricts loading to those plugins (an item may
name a plugin or its distribution), ``MLCORE_PLUGINS=`` (empty) loads none. Built-in components
always load, through the very same hooks (plugin name ``mlcore``).

Name clashes follow one rule, whatever the install or sort order: **a name claimed by two
plugins is refused for both, and both are reported**, until one is uninstalled or one is chosen
with ``MLCORE_PLUGINS``. That holds for plugin names (two distributions with an entry point of
the same name: neither loads) and for component names (``model/trc`` from two plugins: the name
is refused, their other components work). Built-in names and core commands belong to mlcore: a
plugin re-registering one fails.

Pipelines are the exception: they are scoped by plugin (``mlcore run --plugin P --pipeline Y``
finds P's ``Y``), so two plugins may each have a pipeline ``compare``. ``get("pipeline", "P:Y")``
names one; a bare ``get("pipeline", "Y")`` resolves when one plugin has ``Y`` and otherwise lists
the ``plugin:Y`` choices.

Nothing here imports torch: specs only name import paths.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from importlib import metadata
from types import ModuleType
from typing import Any, Literal

import attrs
import pluggy

from mlcore import hookspecs
from mlcore._version import PLUGIN_API_VERSION, __version__
from mlcore.components import KINDS, ComponentSpec, plural
from mlcore.errors import ComponentNotFoundError, did_you_mean

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mlcore.plugins"
ENV_VAR = "MLCORE_PLUGINS"
BUILTIN_PLUGIN = "mlcore"

#: hook name -> component kind: ``register_<plural kind>`` for every kind in :data:`KINDS`.
KIND_HOOKS: dict[str, str] = {f"register_{plural(kind)}": kind for kind in KINDS}

#: Component kinds whose names are scoped by plugin (``plugin:name``): the same name in two plugins
#: is no clash. Every other kind has one global namespace and the name-clash rule.
SCOPED_KINDS: frozenset[str] = frozenset({"pipeline"})

#: What became of a plugin: loaded, skipped because it failed, or not selected by ``MLCORE_PLUGINS``.
PluginStatus = Literal["ok", "failed", "disabled"]


@attrs.define
class PluginInfo:
    """What the registry knows about one plugin: where it came from and whether it loaded.

    ``notes`` lists names of this plugin that are refused because another plugin claims them too.
    """

    name: str
    module: str
    version: str = ""
    distribution: str = ""
    api: str = ""
    status: PluginStatus = "ok"
    reason: str = ""
    components: list[ComponentSpec] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)

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
            "notes": list(self.notes),
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


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    """(distribution name, version) of an entry point, ``("", "")`` when unknown."""
    dist = getattr(ep, "dist", None)
    return (dist.name, dist.version) if dist is not None else ("", "")


def _is_selected(ep: metadata.EntryPoint, selected: set[str] | None) -> bool:
    """Whether ``MLCORE_PLUGINS`` selects this entry point, by plugin name or by distribution name."""
    if selected is None:
        return True
    dist = _dist_of(ep)[0]
    return ep.name in selected or (bool(dist) and dist in selected)


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
        self._refused: dict[tuple[str, str], list[ComponentSpec]] = {}  # clashing names -> every claim
        self._commands: dict[str, str] = {}  # CLI command name -> plugin that added it

    # ----------------------------------------------------------------- loading
    @classmethod
    def discover(cls) -> Registry:
        """Load the built-in plugin and every selected entry-point plugin."""
        reg = cls()
        reg.add_module(BUILTIN_PLUGIN, _builtin_module(), version=__version__, distribution="mlcore")
        selected = _selected_plugins()
        by_name: dict[str, list[metadata.EntryPoint]] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if all(_dist_of(ep) != _dist_of(other) or ep.value != other.value for other in by_name.get(ep.name, [])):
                by_name.setdefault(ep.name, []).append(ep)
        for name in sorted(by_name):
            eps = sorted(by_name[name], key=lambda e: (_dist_of(e)[0], e.value))
            chosen = [ep for ep in eps if _is_selected(ep, selected)]
            if not chosen:
                dist, version = _dist_of(eps[0])
                reg.plugins[name] = PluginInfo(
                    name, eps[0].value, version, dist, status="disabled", reason=f"not selected by {ENV_VAR}"
                )
                continue
            if len(chosen) > 1 or name == BUILTIN_PLUGIN:
                reg._refuse_plugin_name(name, chosen)
                continue
            reg.load_entry_point(chosen[0])
        if selected:
            known = set(reg.plugins) | {_dist_of(ep)[0] for eps in by_name.values() for ep in eps}
            for name in sorted(selected - known):
                reg.plugins[name] = PluginInfo(
                    name, "", status="failed", reason=f"named in {ENV_VAR} but not installed"
                )
        return reg

    def _refuse_plugin_name(self, name: str, eps: list[metadata.EntryPoint]) -> None:
        claims = ", ".join(f"{_dist_of(ep)[0] or '?'} ({ep.value})" for ep in eps)
        if name == BUILTIN_PLUGIN:
            reason = f"plugin name {name!r} is reserved for the core (claimed by {claims})"
        else:
            reason = (
                f"plugin name {name!r} is claimed by {len(eps)} distributions: {claims}; neither is loaded "
                f"until one is uninstalled or chosen with {ENV_VAR}=<distribution>"
            )
        self._fail(PluginInfo(name, " | ".join(ep.value for ep in eps)), reason)

    def load_entry_point(self, ep: metadata.EntryPoint) -> PluginInfo:
        """Import one entry point's module and register it; any failure marks the plugin failed."""
        dist, version = _dist_of(ep)
        try:
            module = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken plugin must not take the CLI down, SystemExit included
            return self._fail(PluginInfo(ep.name, ep.value, version, dist), f"import failed: {_one_line(exc)}")
        return self.add_module(ep.name, module, version=version, distribution=dist)

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
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:
                    return self._fail(info, f"{hook_name} raised {_one_line(exc)}")
                if result is None:
                    continue
                if not isinstance(result, list | tuple):
                    return self._fail(
                        info, f"{hook_name} returned {type(result).__name__}, expected a list of ComponentSpec"
                    )
                for spec in result:
                    problem = _spec_problem(spec)
                    if problem:
                        return self._fail(info, f"{hook_name} returned {problem}")
                    specs.append(attrs.evolve(spec, kind=kind, plugin=name))
        seen: set[tuple[str, str]] = set()
        for spec in specs:
            key = (spec.kind, spec.name)
            if key in seen:
                return self._fail(info, f"duplicate {spec.kind} {spec.name!r} (registered twice by this plugin)")
            owner = self._components.get(key)  # a scoped kind (pipelines) never finds another plugin's
            if owner is not None and owner.plugin == BUILTIN_PLUGIN:
                return self._fail(info, f"duplicate {spec.kind} {spec.name!r} (already registered by plugin 'mlcore')")
            seen.add(key)
        for spec in specs:
            self._claim(spec, info)
        info.components = [s for s in specs if _key(s) not in self._refused]
        self.plugins[name] = info
        return info

    def _claim(self, spec: ComponentSpec, info: PluginInfo) -> None:
        """Register ``spec``, or refuse its name for every claimant when another plugin has it too."""
        key = _key(spec)
        owner = self._components.pop(key, None)
        if owner is None and key not in self._refused:
            self._components[key] = spec
            return
        claims = self._refused.setdefault(key, [owner] if owner is not None else [])
        claims.append(spec)
        self._note_clash(key, extra=info)

    def _note_clash(self, key: tuple[str, str], extra: PluginInfo | None = None) -> None:
        """Refresh the clash notes of every plugin claiming ``key``."""
        claims = self._refused[key]
        plugins = [c.plugin for c in claims]
        note = _clash_note(f"{key[0]}/{key[1]}", plugins)
        for plugin in plugins:
            target = extra if extra is not None and plugin == extra.name else self.plugins.get(plugin)
            if target is None:
                continue
            target.components = [c for c in target.components if _key(c) != key]
            target.notes = [n for n in target.notes if not n.startswith(f"{key[0]}/{key[1]} ")] + [note]
        log.warning("%s", note)

    def _release(self, plugin: str) -> None:
        """Withdraw ``plugin``'s claims on clashing names; a name left with one claimant is its again."""
        for key, claims in list(self._refused.items()):
            if all(c.plugin != plugin for c in claims):
                continue
            claims[:] = [c for c in claims if c.plugin != plugin]
            if len(claims) > 1:
                self._note_clash(key)
                continue
            del self._refused[key]
            for spec in claims:
                self._components[key] = spec
                other = self.plugins.get(spec.plugin)
                if other is not None:
                    other.components.append(spec)
                    other.notes = [n for n in other.notes if not n.startswith(f"{key[0]}/{key[1]} ")]

    def _fail(self, info: PluginInfo, reason: str) -> PluginInfo:
        """Record ``info`` as failed, unregister it from pluggy and drop its components."""
        info.status, info.reason = "failed", reason
        if self.pm.has_plugin(info.name):
            self.pm.unregister(name=info.name)
        for spec in info.components:
            if self._components.get(_key(spec)) is spec:
                del self._components[_key(spec)]
        info.components = []
        self.plugins[info.name] = info
        self._release(info.name)
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
        return sorted(out, key=lambda s: (KINDS.index(s.kind), s.name, s.plugin))

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec of ``kind``/``name``; raises a one-line error listing close names.

        Pipelines are scoped by plugin: ``name`` may be ``plugin:name``; a bare name resolves when
        exactly one plugin registers it, else the error lists the ``plugin:name`` choices.
        """
        if kind not in KINDS:
            raise ComponentNotFoundError(f"unknown component kind {kind!r} (allowed: {', '.join(KINDS)})")
        if kind in SCOPED_KINDS:
            return self._get_scoped(kind, name)
        spec = self._components.get((kind, name))
        if spec is None and (kind, name) in self._refused:
            plugins = [c.plugin for c in self._refused[(kind, name)]]
            raise ComponentNotFoundError(_clash_note(f"{kind}/{name}", plugins))
        if spec is None:
            names = sorted(n for k, n in self._components if k == kind)
            hint = did_you_mean(name, names)
            available = ", ".join(names) if names else "none registered"
            raise ComponentNotFoundError(f"no {kind} named {name!r}{hint} (available: {available})")
        return spec

    def _get_scoped(self, kind: str, name: str) -> ComponentSpec:
        """:meth:`get` for a kind scoped by plugin: ``plugin:name``, or a bare name that is unique."""
        plugin, sep, bare = name.rpartition(":")
        if sep:
            self.plugin(plugin)  # one line for an unknown, failed or disabled plugin
            found = [s for s in self.components(kind, plugin) if s.name == bare]
            if not found:
                names = [s.name for s in self.components(kind, plugin)]
                hint = did_you_mean(bare, names)
                available = ", ".join(names) if names else "none registered"
                raise ComponentNotFoundError(
                    f"plugin {plugin!r} has no {kind} named {bare!r}{hint} (available: {available})"
                )
            return found[0]
        found = [s for s in self.components(kind) if s.name == name]
        if len(found) == 1:
            return found[0]
        if found:
            choices = ", ".join(f"{s.plugin}:{s.name}" for s in found)
            raise ComponentNotFoundError(
                f"{kind} {name!r} is registered by {len(found)} plugins; choose one: {choices} "
                f"(or pass --plugin with --{kind})"
            )
        names = sorted({s.name for s in self.components(kind)})
        hint = did_you_mean(name, names)
        available = ", ".join(names) if names else "none registered"
        raise ComponentNotFoundError(f"no {kind} named {name!r}{hint} (available: {available})")

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
        if info.status == "disabled":
            raise ComponentNotFoundError(f"plugin {name!r} is {self.availability(name)}")
        if info.status != "ok":
            raise ComponentNotFoundError(f"plugin {name!r} is {info.status}: {info.reason}")
        return info

    def availability(self, name: str) -> str:
        """Why plugin ``name`` is or is not usable, as a phrase: ``"installed but disabled (...)"``."""
        info = self.plugins.get(name)
        if info is None:
            return f"not installed (`pip install mlcore-{name}`)"
        if info.status == "disabled":
            return f"installed but disabled ({info.reason}); add it to {ENV_VAR} or unset {ENV_VAR}"
        if info.status == "failed":
            return f"installed but failed to load: {info.reason}"
        return "loaded"

    def pipelines(self, plugin: str) -> list[ComponentSpec]:
        """The pipelines of a plugin, in registration order (the first is the default)."""
        return [s for s in self.plugin(plugin).components if s.kind == "pipeline"]

    def call_commands(self, cli: Any) -> None:
        """Let every loaded plugin add CLI commands; a failing or hijacking plugin is reported, not fatal.

        A plugin whose hook raises loses every command it added and is marked failed. A command
        may not replace one that exists (a core command, or another plugin's): the original is kept
        and the plugin is marked failed.
        """
        impls = sorted(self.pm.hook.register_commands.get_hookimpls(), key=lambda i: i.plugin_name)
        for impl in impls:
            name = impl.plugin_name
            before = dict(cli.commands)
            try:
                impl.function(cli=cli)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                _restore_commands(cli, before)
                self._fail_plugin(name, f"register_commands raised {_one_line(exc)}")
                continue
            replaced = sorted(c for c, cmd in before.items() if cli.commands.get(c) is not cmd)
            if replaced:
                _restore_commands(cli, before)
                owners = [self._commands.get(c, "the core") for c in replaced]
                what = ", ".join(f"{c!r} (from {o})" for c, o in zip(replaced, owners, strict=True))
                self._fail_plugin(name, f"register_commands tried to replace the command {what}; refused")
                continue
            for command in set(cli.commands) - set(before):
                self._commands[command] = name

    def _fail_plugin(self, name: str, reason: str) -> None:
        info = self.plugins.get(name) or PluginInfo(name, name)
        self._fail(info, reason)


def _restore_commands(cli: Any, before: dict[str, Any]) -> None:
    """Put the group's commands back as they were in ``before``."""
    cli.commands.clear()
    cli.commands.update(before)


def _key(spec: ComponentSpec) -> tuple[str, str]:
    """Where ``spec`` lives in the registry: ``(kind, name)``, or ``(kind, "plugin:name")`` for scoped kinds."""
    return (spec.kind, f"{spec.plugin}:{spec.name}" if spec.kind in SCOPED_KINDS else spec.name)


def _clash_note(qualified_name: str, plugins: list[str]) -> str:
    names = " and ".join(repr(p) for p in sorted(plugins))
    return (
        f"{qualified_name} is registered by plugins {names}, so neither is used; uninstall one or choose with {ENV_VAR}"
    )


def _spec_problem(spec: Any) -> str:
    """Why ``spec`` is not a usable :class:`ComponentSpec` (``""`` when it is)."""
    if not isinstance(spec, ComponentSpec):
        return f"{type(spec).__name__}, expected ComponentSpec"
    if not isinstance(spec.name, str) or not spec.name:
        return f"a ComponentSpec with name={spec.name!r}, expected a non-empty string"
    if not isinstance(spec.target, str) or ":" not in spec.target:
        return f"{spec.name!r} with target={spec.target!r}, expected 'package.module:attribute'"
    if spec.config is not None and (not isinstance(spec.config, str) or ":" not in spec.config):
        return f"{spec.name!r} with config={spec.config!r}, expected 'package.module:attribute' or None"
    return ""


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
