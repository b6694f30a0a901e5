"""``mlcore doctor`` (what this installation can do) and ``mlcore find-batch-size``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlcore.devices import DEVICE_CHOICES


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor_cmd(as_json: bool) -> None:
    """Devices, memory, threads, versions of torch and every plugin, and what each optional feature lacks."""
    from mlcore.doctor import diagnose, format_rows

    rows = diagnose()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(format_rows(rows))
    missing = [r for r in rows if r["status"] in ("missing", "failed")]
    if missing:
        click.echo(f"{len(missing)} optional feature(s) or plugin(s) not usable: see the missing/failed rows above")


@click.command("find-batch-size")
@click.option("--plugin", "-p", help="Plugin whose (supervised recipe) pipeline to size.")
@click.option("--pipeline", help="Pipeline of the plugin [default: its first].")
@click.option("--profile", help="Config profile [default: quick].")
@click.option("--config", "-c", "config_file", type=click.Path(path_type=Path), help="TOML/YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value (repeatable).")
@click.option(
    "--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True, help="Where to compute."
)
@click.option(
    "--memory-budget",
    metavar="SIZE",
    help="Memory a training step may use, e.g. 2GB [default: the GPU's; on CPU half the available memory].",
)
@click.option("--max-batch-size", type=click.IntRange(min=1), help="Do not try larger batches.")
@click.option("--init", type=click.IntRange(min=1), default=2, show_default=True, help="First batch size tried.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def find_batch_size_cmd(
    plugin: str | None,
    pipeline: str | None,
    profile: str | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    device: str,
    memory_budget: str | None,
    max_batch_size: int | None,
    init: int,
    as_json: bool,
) -> None:
    """The largest training batch that fits: doubles the batch until it does not fit, then backs off.

    Each trial runs a real training step of the pipeline's model on its training data. Use the
    answer with --set trainer.batch_size=N.

    \b
    Examples:
      mlcore find-batch-size --plugin trc-control
      mlcore find-batch-size --plugin sine --memory-budget 512MB --json
    """
    from mlcore.comparison import format_table
    from mlcore.errors import ConfigError
    from mlcore.training.batch_size import find_run_batch_size

    if plugin is None and pipeline is None and config_file is None:
        raise ConfigError("pass --plugin NAME (see `mlcore plugins`) or --config FILE")
    result = find_run_batch_size(
        plugin,
        pipeline=pipeline,
        profile=profile,
        config=config_file,
        overrides=overrides,
        device=device,
        init=init,
        max_batch_size=max_batch_size,
        memory_budget=memory_budget,
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    rows = [
        {
            "batch_size": t.batch_size,
            "fits": "yes" if t.fits else "no",
            "memory_MiB": None if t.memory is None else round(t.memory / 2**20, 2),
            "reason": t.reason or None,
        }
        for t in result.trials
    ]
    click.echo(format_table(rows))
    budget = "none" if result.budget is None else f"{result.budget / 2**20:.0f} MiB"
    click.echo(f"batch size {result.batch_size} (limit: {result.limit}; device {result.device}; budget {budget})")
    click.echo(f"use it with --set trainer.batch_size={result.batch_size}")


def register(cli: click.Group) -> None:
    """Attach the commands to the group."""
    cli.add_command(doctor_cmd)
    cli.add_command(find_batch_size_cmd)
