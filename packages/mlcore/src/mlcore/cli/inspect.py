"""``mlcore plugins``, ``mlcore list`` and ``mlcore show``: read the registry, never import torch."""

from __future__ import annotations

import json
from typing import Any

import click

from mlcore.components import KINDS, plural


class KindChoice(click.Choice):
    """A component kind, singular or plural (``model`` or ``models``, ``loss`` or ``losses``)."""

    def __init__(self) -> None:
        super().__init__(KINDS)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Map a plural to its kind, then check it like a :class:`click.Choice`."""
        plurals = {plural(kind): kind for kind in KINDS}
        if isinstance(value, str):
            value = plurals.get(value.lower(), value.lower())
        return super().convert(value, param, ctx)


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """Installed plugins, their versions, status (ok/failed/disabled) and components."""
    from mlcore.registry import get_registry

    reg = get_registry()
    infos = sorted(reg.plugins.values(), key=lambda i: (i.name != "mlcore", i.name))
    if as_json:
        _echo_json([i.to_dict() for i in infos])
        return
    for info in infos:
        mark = {"ok": "ok", "failed": "FAILED", "disabled": "disabled"}[info.status]
        version = f" {info.version}" if info.version else ""
        click.echo(f"{info.name}{version}  [{mark}]")
        if info.status != "ok":
            click.echo(f"    reason: {info.reason}")
            continue
        for kind, names in info.to_dict()["components"].items():
            click.echo(f"    {plural(kind):<11} {', '.join(names)}")
        for note in info.notes:
            click.echo(f"    refused: {note}")


@click.command("list")
@click.argument("kind", required=False, type=KindChoice(), metavar="[KIND]")
@click.option("--plugin", "-p", help="Only components of this plugin.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(kind: str | None, plugin: str | None, as_json: bool) -> None:
    """Registered components, of one KIND (model or models) and/or one plugin."""
    from mlcore.registry import get_registry, iter_specs

    reg = get_registry()
    if plugin is not None:
        reg.plugin(plugin)  # clear error for an unknown plugin
    specs = reg.components(kind, plugin)
    if as_json:
        _echo_json(iter_specs(specs))
        return
    if not specs:
        click.echo(_nothing_matches(reg, kind, plugin))
        return
    width = max(len(s.name) for s in specs)
    current = None
    for spec in specs:
        if spec.kind != current:
            current = spec.kind
            click.echo(f"{plural(spec.kind)}:")
        click.echo(f"  {spec.name:<{width}}  {spec.summary}  [{spec.plugin}]")


@click.command("show")
@click.argument("kind", type=KindChoice(), metavar="KIND")
@click.argument("name")
@click.option("--plugin", "-p", help="The plugin it belongs to (pipelines are named per plugin; or PLUGIN:NAME).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_cmd(kind: str, name: str, plugin: str | None, as_json: bool) -> None:
    """A component's summary and config fields with defaults (imports only its config).

    \b
    Examples:
      mlcore show model trc
      mlcore show pipeline compare --plugin diffplan-vins
    """
    from mlcore.config import describe_fields
    from mlcore.errors import ComponentNotFoundError
    from mlcore.registry import SCOPED_KINDS, get_registry

    reg = get_registry()
    if plugin is not None and kind in SCOPED_KINDS and ":" not in name:
        name = f"{plugin}:{name}"
    spec = reg.get(kind, name)
    if plugin is not None and spec.plugin != plugin:
        raise ComponentNotFoundError(f"{kind} {spec.name!r} belongs to plugin {spec.plugin!r}, not {plugin!r}")
    cls = spec.config_class()
    fields = describe_fields(cls) if cls is not None else []
    if as_json:
        _echo_json(
            {
                "kind": spec.kind,
                "name": spec.name,
                "plugin": spec.plugin,
                "summary": spec.summary,
                "target": spec.target,
                "config": spec.config,
                "fields": fields,
                "profiles": spec.profiles,
            }
        )
        return
    click.echo(f"{spec.kind} {spec.name}  [{spec.plugin}]")
    if spec.summary:
        click.echo(f"  {spec.summary}")
    click.echo(f"  implementation: {spec.target}")
    if not fields:
        click.echo("  no options")
    else:
        click.echo("  options (override with --set <section>.<name>=VALUE):")
        width = max(len(f["name"]) for f in fields)
        for f in fields:
            help_text = f"  # {f['help']}" if f["help"] else ""
            click.echo(f"    {f['name']:<{width}} = {json.dumps(f['default'])}  ({f['type']}){help_text}")
    if spec.profiles:
        click.echo("  profiles:")
        for pname, values in spec.profiles.items():
            click.echo(f"    {pname}: {json.dumps(values)}")


def _nothing_matches(reg: Any, kind: str | None, plugin: str | None) -> str:
    """Say what is there when a listing is empty (e.g. a plugin that uses the built-in trainer)."""
    if kind is None:
        return f"plugin {plugin!r} registers no component"
    others = reg.components(kind)
    if not others:
        return f"no {kind} is registered by any plugin"
    there = ", ".join(f"{s.name} [{s.plugin}]" for s in others)
    return f"plugin {plugin!r} registers no {kind}; the {plural(kind)} available to it: {there}"


def register(cli: click.Group) -> None:
    """Attach these commands to the group."""
    for cmd in (plugins_cmd, list_cmd, show_cmd):
        cli.add_command(cmd)
