"""``mlcore diffplan-vins check-release PATH``: the plugin's command group (registered by ``plugin.py``)."""

from __future__ import annotations

import click

__all__ = ["GROUP", "add_commands"]

#: The plugin's command group: ``mlcore diffplan-vins ...``.
GROUP = "diffplan-vins"


def add_commands(cli: click.Group) -> None:
    """Add the ``diffplan-vins`` group with ``check-release`` to the ``mlcore`` CLI (imports torch only when run).

    Idempotent: ``mlcore.cli.main.main`` registers plugin commands on every call, and the group
    added by an earlier call in the same process is kept (a new one would count as replacing it).
    """
    existing = cli.commands.get(GROUP)
    if getattr(getattr(existing, "callback", None), "__module__", "") == __name__:
        return

    @cli.group(name=GROUP)
    def group() -> None:
        """Commands of the diffplan-vins plugin (model release)."""

    @group.command(name="check-release")
    @click.argument("source", required=False, type=click.Path(path_type=str))
    @click.option("--model", "names", multiple=True, help="Check only this released model (repeatable).")
    @click.option("--max-mb", type=float, default=10.0, show_default=True, help="Size limit of one checkpoint (MB).")
    @click.option("--no-evaluate", is_flag=True, help="Skip `mlcore evaluate` (load, inference and size only).")
    @click.option("--device", default="cpu", show_default=True, help="Device to load and run the models on.")
    @click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
    def check_release_cmd(
        source: str | None, names: tuple[str, ...], max_mb: float, no_evaluate: bool, device: str, as_json: bool
    ) -> None:
        """Load every released model, run it on sample data, evaluate it, report memory and size.

        SOURCE is a release directory, the run directory of the `release` pipeline or a .tar.gz
        archive (default: $MLCORE_PRETRAINED, else ./pretrained_models). Exits 1 when any model fails.
        """
        import json

        import attrs

        from mlcore.errors import MlcoreError
        from mlcore.io import to_jsonable
        from mlcore_diffplan_vins.release.check import check_release, format_rows
        from mlcore_diffplan_vins.release.loading import default_source

        if max_mb <= 0:
            raise click.BadParameter(f"{max_mb} must be positive", param_hint="--max-mb")
        rows = check_release(
            source if source is not None else default_source(),
            names=list(names) or None,
            max_bytes=int(max_mb * 1e6),
            evaluate=not no_evaluate,
            device=device,
        )
        if as_json:
            click.echo(json.dumps(to_jsonable([attrs.asdict(r) for r in rows]), indent=2))
        else:
            click.echo(format_rows(rows))
        failed = [r.name for r in rows if not r.ok]
        if failed:  # the table is printed; the error line makes the exit code 1
            raise MlcoreError(f"{len(failed)} of {len(rows)} released models failed the check: {', '.join(failed)}")
