"""Typed configs: attrs classes loaded strictly from TOML/YAML/dicts, with ``--set`` overrides.

- :func:`structure` turns a plain mapping into an attrs config, converting and checking types;
  an unknown key or a bad value raises :class:`~mlcore.errors.ConfigError` with one line that
  names the full key (``model.hidden_size``) and what is allowed.
- :func:`unstructure` turns a config back into a TOML-ready mapping.
- :func:`apply_overrides` applies ``path.to.key=value`` strings (values parsed as TOML).
- :func:`load_file` / :func:`save_toml` read and (atomically) write config files.
- Validators :func:`one_of`, :func:`positive`, :func:`non_negative`, :func:`in_range` give
  messages in the same one-line style.
- A field with ``metadata={"mlcore_old_names": ("data",)}`` reads an old table name (``[data]``,
  ``--set data.x=1``) as the field, with a one-line deprecation warning (:func:`rename_old_tables`).
- A field whose metadata carries a converter under :data:`STRUCTURE` is built by that converter
  (``converter(value, where)``): component sections (:func:`mlcore.pipelines.sections.component_field`,
  still importable from here) use it, so this module never needs the registry.
"""

from __future__ import annotations

import copy
import enum
import logging
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import tomllib

from mlcore.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from mlcore.pipelines.sections import ComponentConfig as ComponentConfig
    from mlcore.pipelines.sections import component_field as component_field

log = logging.getLogger(__name__)

#: Field metadata key: old names of a config table, still read (``metadata={OLD_NAMES: ("data",)}``).
OLD_NAMES = "mlcore_old_names"
#: Field metadata key: a converter ``(value, where) -> object`` that :func:`structure` calls for the field.
STRUCTURE = "mlcore_structure"

_MOVED = {"ComponentConfig", "component_field"}


def __getattr__(name: str) -> Any:
    """Names that moved to :mod:`mlcore.pipelines.sections`, still importable from here."""
    if name in _MOVED:
        from mlcore.pipelines import sections

        return getattr(sections, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- validators


def one_of(*choices: Any) -> Any:
    """Validator: the value must be one of ``choices``."""

    def check(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
        if value not in choices:
            allowed = ", ".join(str(c) for c in choices)
            raise ValueError(f"{attribute.name}={value!r} is not allowed (allowed: {allowed})")

    return check


def in_range(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Any:
    """Validator: ``low <= value <= high`` (open bounds with ``low_open``/``high_open``), finite."""

    def check(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
        if value is None:
            return
        bad = isinstance(value, float) and not math.isfinite(value)
        if low is not None:
            bad = bad or (value <= low if low_open else value < low)
        if high is not None:
            bad = bad or (value >= high if high_open else value > high)
        if bad:
            lo = "-inf" if low is None else str(low)
            hi = "inf" if high is None else str(high)
            interval = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
            raise ValueError(f"{attribute.name}={value!r} is out of range (allowed: {interval})")

    return check


def positive(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    """Validator: ``value > 0`` (and finite)."""
    in_range(0, low_open=True)(inst, attribute, value)


def non_negative(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    """Validator: ``value >= 0`` (and finite)."""
    in_range(0)(inst, attribute, value)


# --------------------------------------------------------------------------- structure


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Convert ``value`` to type ``tp`` or raise ConfigError naming ``key``."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not a valid {_type_name(tp)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}={value!r} is not allowed (allowed: {', '.join(str(a) for a in args)})")
    if attrs.has(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        return structure(tp, value, where=f"{key}.")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in tp)
            raise ConfigError(f"{key}={value!r} is not allowed (allowed: {allowed})") from None
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        items = list(value)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(items)}")
            return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, items, strict=True)))
        item_tp = args[0] if args else Any
        converted = [_convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(items)]
        return (origin or tp)(converted) if (origin or tp) is not list else converted
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}={value!r} is not a boolean (allowed: true, false)")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}={value!r} is not an integer")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} is not a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}={value!r} is not a number")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}={value!r} is not a string")
    if tp is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise ConfigError(f"{key}={value!r} is not a path")
    return value


def structure(cls: type, data: Mapping[str, Any], *, where: str = "") -> Any:
    """Build attrs class ``cls`` from ``data`` strictly; ``where`` prefixes keys in errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where.rstrip('.') or 'config'}: expected a table, got {data!r}")
    fields = {f.name: f for f in attrs.fields(cls)}
    data = rename_old_tables(cls, data, where=where)
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: fall back to no conversion
        hints = {}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        hint = did_you_mean(key, list(fields))
        raise ConfigError(
            f"unknown key {where}{key!r}{hint} (allowed: {', '.join(fields)})".replace(f"{where}'", f"'{where}")
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        field = fields[name]
        key = f"{where}{name}"
        convert = field.metadata.get(STRUCTURE)
        if convert is not None:
            kwargs[name] = None if value is None else convert(value, f"{key}.")
        else:
            kwargs[name] = _convert(hints.get(name, Any), value, key)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}{msg}") from None


def unstructure(obj: Any) -> Any:
    """Turn a config (attrs instances, paths, enums, tuples) into TOML-ready plain data.

    ``None`` values are dropped (TOML has no null): they come back as the field default. An object
    with a ``to_table()`` method (a component section) is written as the table it returns.
    """
    to_table = getattr(obj, "to_table", None)
    if callable(to_table):
        return to_table()
    if attrs.has(type(obj)):
        out = {}
        for f in attrs.fields(type(obj)):
            value = getattr(obj, f.name)
            if value is None:
                continue
            out[f.name] = unstructure(value)
        return out
    if isinstance(obj, Mapping):
        return {str(k): unstructure(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple | set | frozenset):
        return [unstructure(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def describe_fields(cls: type) -> list[dict[str, Any]]:
    """Rows of (name, type, default, help) for ``mlcore show``; nested classes are flattened."""
    rows: list[dict[str, Any]] = []
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}

    def walk(c: type, prefix: str, inst: Any) -> None:
        h = typing.get_type_hints(c) if c is not cls else hints
        for f in attrs.fields(c):
            value = getattr(inst, f.name) if inst is not None else None
            if attrs.has(type(value)) and not callable(getattr(value, "to_table", None)):
                walk(type(value), f"{prefix}{f.name}.", value)
                continue
            rows.append(
                {
                    "name": f"{prefix}{f.name}",
                    "type": _type_name(h.get(f.name, Any)),
                    "default": unstructure(value),
                    "help": f.metadata.get("help", ""),
                }
            )

    try:
        instance = cls()
    except Exception:
        instance = None
    walk(cls, "", instance)
    return rows


# --------------------------------------------------------------------------- renamed tables


def old_table_names(cls: type | None) -> dict[str, str]:
    """``{old name: field name}`` for the fields of attrs class ``cls`` that declare ``mlcore_old_names``."""
    if cls is None or not attrs.has(cls):
        return {}
    return {old: f.name for f in attrs.fields(cls) for old in f.metadata.get(OLD_NAMES, ())}


def _warn_renamed(old: str, new: str, where: str = "") -> None:
    log.warning("config: [%s%s] is now [%s%s]; the old name is still read", where, old, where, new)


def rename_old_tables(
    cls: type | None, data: Mapping[str, Any], *, where: str = "", source: str = "", warn: bool = True
) -> dict[str, Any]:
    """``data`` with each top-level key that is an old name of a field of ``cls`` renamed to the field.

    Logs one deprecation line per renamed key (unless ``warn`` is false). Giving both the old and the
    new name raises :class:`~mlcore.errors.ConfigError`; ``source`` (a file name) prefixes that message.
    """
    renames = old_table_names(cls)
    if not renames or not any(key in renames for key in data):
        return dict(data)
    out: dict[str, Any] = {}
    for key, value in data.items():
        new = renames.get(key)
        if new is None:
            out[key] = value
            continue
        if new in data:
            prefix = f"{source}: " if source else ""
            raise ConfigError(
                f"{prefix}both [{where}{key}] and [{where}{new}] are given; [{where}{key}] is the old name "
                f"of [{where}{new}]: keep only [{where}{new}]"
            )
        if warn:
            _warn_renamed(key, new, where)
        out[new] = value
    return out


def _rename_override(item: str, renames: Mapping[str, str]) -> tuple[str, str | None]:
    """``("dataset.seed=3", "data")`` for ``"data.seed=3"`` when ``data`` is an old name; else ``(item, None)``."""
    key, sep, raw = item.partition("=")
    head, dot, rest = key.strip().partition(".")
    if not sep or head not in renames:
        return item, None
    return f"{renames[head]}{dot}{rest}={raw}", head


def _rename_overrides(cls: type | None, overrides: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The overrides with old table names rewritten, and ``{old: new}`` for those that were."""
    renames = old_table_names(cls)
    items = list(overrides)
    if not renames:
        return items, {}
    out: list[str] = []
    old_items: dict[str, str] = {}  # new name -> first item using an old name
    new_items: dict[str, str] = {}  # new name -> first item using the new name
    used: dict[str, str] = {}
    for item in items:
        new_item, old = _rename_override(item, renames)
        head = item.partition("=")[0].strip().partition(".")[0]
        if old is not None:
            old_items.setdefault(renames[old], item)
            used[old] = renames[old]
        elif head in renames.values():
            new_items.setdefault(head, item)
        out.append(new_item)
    for new, item in old_items.items():
        if new in new_items:
            old = item.partition("=")[0].strip().partition(".")[0]
            raise ConfigError(
                f"--set {item!r} and --set {new_items[new]!r} name the same table "
                f"([{old}] is the old name of [{new}]): use only [{new}]"
            )
    return out, used


def rename_old_overrides(cls: type | None, overrides: Iterable[str], *, warn: bool = True) -> list[str]:
    """``--set`` items whose first segment is an old table name of ``cls``, rewritten to the field's name.

    Mixing the old and the new name of one table raises :class:`~mlcore.errors.ConfigError`.
    """
    out, used = _rename_overrides(cls, overrides)
    if warn:
        for old, new in used.items():
            _warn_renamed(old, new)
    return out


# --------------------------------------------------------------------------- overrides and files


def flatten(doc: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Nested tables as ``{(table, ..., key): value}``; an empty table contributes nothing."""
    if isinstance(doc, Mapping):
        out: dict[tuple[str, ...], Any] = {}
        for key, value in doc.items():
            out.update(flatten(value, (*prefix, str(key))))
        return out
    return {prefix: doc}


def flatten_dotted(doc: Any) -> dict[str, Any]:
    """Nested tables as ``{"table.key": value}`` (see :func:`flatten`)."""
    return {".".join(key): value for key, value in flatten(doc).items()}


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``base`` with ``update`` merged in recursively (tables merge, values replace).

    A component table (one with a ``name`` key) whose ``name`` changes is replaced whole, since
    the old component's options do not apply to the new one.
    """
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        current = out.get(key)
        switches_component = (
            isinstance(value, Mapping)
            and isinstance(current, Mapping)
            and "name" in value
            and "name" in current
            and value["name"] != current["name"]
        )
        if isinstance(value, Mapping) and isinstance(current, Mapping) and not switches_component:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def free_tables(cls: type) -> list[tuple[str, ...]]:
    """Paths of the free-form tables of attrs config class ``cls``: fields typed ``dict[...]``.

    Nested config classes are searched too; fields with their own converter (component tables) are not.
    """
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        return []
    out: list[tuple[str, ...]] = []
    for field in attrs.fields(cls):
        if field.metadata.get(STRUCTURE) is not None:
            continue
        tp = hints.get(field.name)
        options = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
        for option in options:
            if (typing.get_origin(option) or option) in (dict, Mapping):
                out.append((field.name,))
                break
            if isinstance(option, type) and attrs.has(option):
                out += [(field.name, *path) for path in free_tables(option)]
                break
    return out


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _has_path(data: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True


def _drop_path(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def layer_configs(
    cls: type | None,
    profile: Mapping[str, Any],
    document: Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    document_name: str = "config file",
) -> dict[str, Any]:
    """The raw config of a run: ``cls`` defaults < ``profile`` < ``document`` (a config file) < ``overrides``.

    Tables merge key by key, except free-form tables (:func:`free_tables`, e.g. an ablation's
    ``variants``): one given by the profile or the document replaces the lower levels' table whole,
    so a profile listing three variants runs three, not those three plus the defaults. ``--set``
    overrides always merge (``--set variants.per.lr=1e-3`` changes one entry).

    A component table (one with a ``name``) whose name a higher layer changes drops the lower
    layers' options: ``--set model.name=dqn`` over a profile's SAC table starts from DQN's defaults
    (plus the ``--set model.*`` options given with it).

    Old table names (fields with ``mlcore_old_names``) are renamed in every layer *before* merging,
    so ``[data]`` in a profile and ``--set data.seed=3`` layer exactly like ``[dataset]``; one
    deprecation line is logged per old name. ``document_name`` names the document in errors.
    """
    renamed: dict[str, str] = {}
    for layer in (profile, document):
        renamed.update({old: new for old, new in old_table_names(cls).items() if old in layer})
    profile = rename_old_tables(cls, profile, source="profile", warn=False)
    document = rename_old_tables(cls, document, source=document_name, warn=False)
    overrides, used = _rename_overrides(cls, overrides)
    renamed.update(used)
    for old, new in renamed.items():
        _warn_renamed(old, new)
    base: dict[str, Any] = unstructure(cls()) if cls is not None else {}
    middle: dict[str, Any] = copy.deepcopy(dict(profile))
    for path in free_tables(cls) if cls is not None else []:
        if _has_path(document, path):
            _drop_path(base, path)
            _drop_path(middle, path)
        elif _has_path(middle, path):
            _drop_path(base, path)
    merged = deep_merge(deep_merge(base, middle), document)
    _drop_switched_components(merged, overrides)
    return apply_overrides(merged, overrides)


def _drop_switched_components(data: dict[str, Any], overrides: Iterable[str]) -> None:
    """Empty each component table whose ``name`` an override changes (``--set model.name=dqn``).

    The lower layers' options belong to the old component; the new one starts from its own
    defaults plus whatever the overrides give it (as :func:`deep_merge` does for a file's table).
    """
    for item in overrides:
        path, value = parse_override(item)
        if path[-1] != "name" or len(path) < 2:
            continue
        node: Any = data
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, dict) and "name" in node and node["name"] != value:
            node.clear()


def parse_value(text: str) -> Any:
    """Parse an override value as TOML (``3``, ``1e-3``, ``true``, ``[1, 2]``, ``"x"``), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into (``["a", "b", "c"]``, parsed value)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set trainer.epochs=5")
    return key.split("."), parse_value(raw.strip())


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A new dict with each ``path.to.key=value`` applied (intermediate tables are created)."""
    out = copy.deepcopy(dict(data))
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is a value, not a table")
            node = child
        node[path[-1]] = value
    return out


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (or YAML, if PyYAML is installed) config file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{p}: reading YAML needs PyYAML (`pip install pyyaml`); or use TOML") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
        return data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Serialise plain data (from :func:`unstructure`) as TOML."""
    import tomli_w

    return tomli_w.dumps(unstructure(dict(data)))


def save_toml(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as TOML atomically; returns the path."""
    from mlcore.io import atomic_write_text

    return atomic_write_text(path, dumps_toml(data))
