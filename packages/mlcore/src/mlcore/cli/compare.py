"""``mlcore compare``: metrics, parameters, training time, epochs-to-best and config differences across runs."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--sort", "sort_key", help="Sort rows by this column or metric (e.g. metric.success_rate).")
def compare_cmd(run_dirs: tuple[Path, ...], as_json: bool, sort_key: str | None) -> None:
    """Compare run directories side by side, with the config keys whose values differ."""
    from mlcore import api
    from mlcore.comparison import format_table
    from mlcore.io import to_jsonable

    rows = api.compare(run_dirs)
    if sort_key:
        candidates = (sort_key, f"metric.{sort_key}", f"config.{sort_key}")
        key = next((k for k in candidates if any(k in r for r in rows)), sort_key)
        rows.sort(key=lambda r: (r.get(key) is None, r.get(key)))
    if as_json:
        click.echo(json.dumps(to_jsonable(rows), indent=2))
    else:
        click.echo(format_table(rows))


def register(cli: click.Group) -> None:
    """Attach these commands to the group."""
    cli.add_command(compare_cmd)
