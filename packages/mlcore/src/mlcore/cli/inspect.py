"""``mlcore plugins``, ``mlcore list`` and ``mlcore show``: read the registry, never import torch."""

from __future__ import annotations

import json

import click

from mlcore.components import KINDS, plural


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


@click.command("list")
@click.argument("kind", required=False, type=click.Choice(KINDS), metavar="[KIND]")
@click.option("--plugin", "-p", help="Only components of this plugin.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(kind: str | None, plugin: str | None, as_json: bool) -> None:
    """Registered components, optionally of one KIND and/or one plugin."""
    from mlcore.registry import get_registry, iter_specs

    reg = get_registry()
    if plugin is not None:
        reg.plugin(plugin)  # clear error for an unknown plugin
    specs = reg.components(kind, plugin)
    if as_json:
        _echo_json(iter_specs(specs))
        return
    if not specs:
        click.echo("no components match")
        return
    width = max(len(s.name) for s in specs)
    current = None
    for spec in specs:
        if spec.kind != current:
            current = spec.kind
            click.echo(f"{plural(spec.kind)}:")
        click.echo(f"  {spec.name:<{width}}  {spec.summary}  [{spec.plugin}]")


@click.command("show")
@click.argument("kind", type=click.Choice(KINDS), metavar="KIND")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_cmd(kind: str, name: str, as_json: bool) -> None:
    """A component's summary and its config fields with defaults (imports only its config class)."""
    from mlcore.config import describe_fields
    from mlcore.registry import get_registry

    spec = get_registry().get(kind, name)
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


def register(cli: click.Group) -> None:
    """Attach these commands to the group."""
    for cmd in (plugins_cmd, list_cmd, show_cmd):
        cli.add_command(cmd)
