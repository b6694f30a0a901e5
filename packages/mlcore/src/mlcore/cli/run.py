"""``mlcore run`` (a plugin's pipeline) and ``mlcore train`` (the generic train pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import click

from mlcore.devices import DEVICE_CHOICES

if TYPE_CHECKING:
    from mlcore.api import RunOptions

_set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set trainer.epochs=5 (repeatable; values parsed as TOML).",
)
_out_option = click.option(
    "--out", "-o", metavar="PATH", help="Run directory [default: runs/<plugin>-<pipeline>-<time>]."
)  # a plain string: click.Path would turn "" into "." and hide the mistake
_device_option = click.option(
    "--device", type=click.Choice(DEVICE_CHOICES), help="Where to compute [default: auto = cuda, mps, else cpu]."
)
_seed_option = click.option("--seed", type=int, help="Random seed [default: 0, or run.seed of the config].")
threads_option = click.option(
    "--threads",
    type=click.IntRange(min=0),
    help="torch intra-op threads [default: run.threads, else 0 = the idle CPUs available to this process, at most 8].",
)
_progress_option = click.option("--progress/--no-progress", default=True, help="Show progress bars.")


def _print_result(result: object) -> None:
    from mlcore.comparison import format_table

    out_dir = result.out_dir  # type: ignore[attr-defined]
    metrics = result.metrics  # type: ignore[attr-defined]
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if scalars:
        click.echo(format_table([{"metric": k, "value": v} for k, v in scalars.items()]))
    click.echo(f"run directory: {out_dir}")
    for name in ("report.md", "metrics.json", "training_curves.png"):
        if (out_dir / name).exists():
            click.echo(f"  {name}")


@click.command("run")
@click.option("--plugin", "-p", help="Plugin whose pipeline to run (see `mlcore plugins`).")
@click.option(
    "--pipeline",
    help="Pipeline of the plugin [default: its first]; alone it picks the plugin when one has it, or PLUGIN:NAME.",
)
@click.option(
    "--profile",
    help="Config profile: quick (minutes on a CPU), full (the research settings) or another the pipeline lists "
    "in `mlcore show pipeline NAME` [default: quick].",
)
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    help="TOML/YAML config, e.g. a run's config.toml to reproduce it.",
)
@_set_option
@_out_option
@_device_option
@_seed_option
@threads_option
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(path_type=Path),
    help="Continue a run from its directory (interrupted, or finished with --set trainer.epochs=<more>).",
)
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
@_progress_option
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Train with DDP on N processes of this machine (re-launched with torchrun; gloo on CPU, nccl on GPUs).",
)
def run_cmd(
    plugin: str | None,
    pipeline: str | None,
    profile: str | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    out: str | None,
    device: str | None,
    seed: int | None,
    threads: int | None,
    resume_dir: Path | None,
    dry_run: bool,
    progress: bool,
    nproc: int,
) -> None:
    """Run a plugin's pipeline end to end (generate, train, evaluate, report).

    \b
    Examples:
      mlcore run --plugin trc-control
      mlcore run --plugin trc-control --profile full --set model.size=large
      mlcore run --config runs/trc-control-trc-20261122-101500/config.toml
      mlcore run --resume runs/trc-control-trc-20261122-101500 --set trainer.epochs=40
      mlcore run --plugin trc-control --nproc 2 --out runs/ddp

    Ctrl-C or SIGTERM stops the run after its last checkpoint and exits with 130.
    """
    from mlcore import api
    from mlcore.errors import ConfigError

    if plugin is None and pipeline is None and config_file is None and resume_dir is None:
        raise ConfigError("pass --plugin NAME (see `mlcore plugins`), --config FILE or --resume DIR")
    options = api.RunOptions(plugin, pipeline, profile, config_file, overrides, out, device, seed, threads)
    if dry_run:
        if resume_dir is not None:
            if config_file is not None or out is not None:
                raise ConfigError("--resume DIR already fixes the config and output; drop --config/--out")
            options = attrs.evolve(options, config=resume_dir / "config.toml")
        from mlcore.config import dumps_toml

        click.echo(dumps_toml(options.resolve().to_document()), nl=False)
        return
    if nproc > 1:
        _relaunch(nproc, options, resume_dir)
        return
    result = options.run(resume=resume_dir, progress=progress)
    if api._is_main_rank():  # under --nproc every rank runs this; rank 0 speaks for them
        _print_result(result)


def _relaunch(nproc: int, options: RunOptions, resume_dir: Path | None) -> None:
    """``mlcore run --nproc N``: the same run as N torchrun processes (rank 0 writes the run directory)."""
    import os
    import subprocess

    from mlcore.errors import ConfigError, MlcoreError, RunInterrupted
    from mlcore.training._distributed import torchrun_command

    if int(os.environ.get("WORLD_SIZE") or 1) > 1:
        raise ConfigError("--nproc: already running under torchrun (WORLD_SIZE is set); drop --nproc")
    if options.out is None and resume_dir is None:  # every rank must use the same directory: fix it here
        from mlcore.runs import default_run_dir

        settings = options.resolve().settings
        options = attrs.evolve(options, out=str(default_run_dir(settings.plugin, settings.pipeline)))
    args = ["run", "--no-progress", *options.cli_args()]
    if resume_dir is not None:
        args += ["--resume", str(resume_dir)]
    cmd = torchrun_command(nproc, args)
    click.echo(f"launching {nproc} processes: {' '.join(cmd[1:])}", err=True)
    code = subprocess.call(cmd)
    if code == 130:
        raise RunInterrupted(
            f"{options.out or resume_dir}: interrupted; resume with the same command", run_dir=str(options.out)
        )
    if code != 0:
        raise MlcoreError(f"the distributed run failed (torchrun exit code {code}); see the messages above")


@click.command("train")
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    required=True,
    help="TOML/YAML with [dataset], [model], [loss], [trainer], [evaluator] tables.",
)
@_set_option
@_out_option
@_device_option
@_seed_option
@threads_option
@_progress_option
def train_cmd(
    config_file: Path,
    overrides: tuple[str, ...],
    out: str | None,
    device: str | None,
    seed: int | None,
    threads: int | None,
    progress: bool,
) -> None:
    """Train any registered model on any registered dataset from a config file.

    \b
    Example config:
      [dataset]
      name = "lqr"
      [model]
      name = "trc"
      size = "small"
      [trainer]
      epochs = 20
      [evaluator]
      name = "trc"
    """
    from mlcore import api

    result = api.train(
        config_file, overrides=overrides, out=out, device=device, seed=seed, threads=threads, progress=progress
    )
    _print_result(result)


def register(cli: click.Group) -> None:
    """Attach these commands to the group."""
    cli.add_command(run_cmd)
    cli.add_command(train_cmd)
