"""``mlcore data generate``: write a dataset's files."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("data")
def data_group() -> None:
    """Generate and inspect data sets."""


@data_group.command("generate")
@click.argument("dataset")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Output directory.")
@click.option("--num-samples", "-n", type=int, help="Number of samples (for datasets with a num_samples option).")
@click.option("--seed", type=int, help="Random seed (for datasets with a seed option).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a dataset option (repeatable).")
def generate_cmd(
    dataset: str, out: Path, num_samples: int | None, seed: int | None, overrides: tuple[str, ...]
) -> None:
    """Generate DATASET (see `mlcore list dataset`) into --out.

    \b
    Example:
      mlcore data generate lqr --num-samples 10000 --seed 42 --out data/lqr_train
    """
    from mlcore import api

    paths = api.generate_data(dataset, out, num_samples=num_samples, seed=seed, overrides=overrides)
    for p in paths:
        click.echo(f"wrote {p}")


def register(cli: click.Group) -> None:
    """Attach these commands to the group."""
    cli.add_command(data_group)
