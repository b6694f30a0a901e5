"""``mlcore data generate``: write a dataset's files."""

from __future__ import annotations

from pathlib import Path

import click

from mlcore.errors import ConfigError


@click.group("data")
def data_group() -> None:
    """Generate and inspect data sets."""


def option_overrides(args: list[str]) -> list[str]:
    """``--some-option VALUE`` / ``--some-option=VALUE`` pairs as ``some_option=VALUE`` overrides.

    Lets a dataset's own config fields be given as flags (``--size 15 --episodes 200``); values are
    parsed like ``--set`` values. A stray word or a flag without a value is a one-line error.
    """
    overrides: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument {arg!r}: dataset options are given as --name VALUE")
        name, sep, value = arg[2:].partition("=")
        if not sep:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError(f"option --{name} needs a value (--{name} VALUE)")
            value = args[i + 1]
            i += 1
        overrides.append(f"{name.replace('-', '_')}={value}")
        i += 1
    return overrides


@data_group.command("generate", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dataset")
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    help="Output directory (default: data/DATASET).",
)
@click.option("--num-samples", "-n", type=int, help="Number of samples (for datasets with a num_samples option).")
@click.option("--seed", type=int, help="Random seed (for datasets with a seed option).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a dataset option (repeatable).")
@click.pass_context
def generate_cmd(
    ctx: click.Context,
    dataset: str,
    out: Path | None,
    num_samples: int | None,
    seed: int | None,
    overrides: tuple[str, ...],
) -> None:
    """Generate DATASET (see `mlcore list dataset`) into --out.

    Any option of the dataset's config (`mlcore show dataset DATASET`) can also be given as a flag:
    `--episodes 200` is `--set episodes=200`.

    \b
    Examples:
      mlcore data generate lqr --num-samples 10000 --seed 42 --out data/lqr_train
      mlcore data generate lqr --time-horizon 3.0 --test-num-samples 0 --seed 0
    """
    from mlcore import api

    extra = option_overrides(list(ctx.args))
    target = out if out is not None else Path("data") / dataset
    paths = api.generate_data(dataset, target, num_samples=num_samples, seed=seed, overrides=[*extra, *overrides])
    for p in paths:
        click.echo(f"wrote {p}")


def register(cli: click.Group) -> None:
    """Attach these commands to the group."""
    cli.add_command(data_group)
