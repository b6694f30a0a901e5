"""``mlcore tune``: hyperparameter search over a config's ``[search.space]`` (Optuna or Ray Tune)."""

from __future__ import annotations

from pathlib import Path

import click

from mlcore.cli.run import _device_option, _seed_option, _set_option, threads_option


@click.command("tune")
@click.option("--plugin", "-p", help="Plugin whose pipeline to search (see `mlcore plugins`).")
@click.option("--pipeline", help="Pipeline of the plugin [default: its first].")
@click.option("--profile", help="Config profile the trials start from [default: quick].")
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    help="TOML/YAML config with a [search] table and [search.space] (see docs/tuning.md).",
)
@_set_option
@click.option(
    "--out",
    "-o",
    metavar="PATH",
    help="Study directory; an existing one is resumed [default: tunes/<plugin>-<pipeline>-<time>].",
)
@click.option(
    "--engine", type=click.Choice(["optuna", "ray"]), default="optuna", show_default=True, help="Search engine."
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    help="Complete + pruned trials the study ends with (failed ones do not count; more extends a resumed study) "
    "[default: search.trials].",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Trial processes sharing the study (Optuna; they divide the thread setting) [default: search.jobs = 1].",
)
@_device_option
@_seed_option
@threads_option
@click.option(
    "--scheduler",
    type=click.Choice(["asha", "pbt", "fifo"]),
    default="asha",
    show_default=True,
    help="Ray Tune trial scheduler (--engine ray): asha stops poor trials early, pbt continues weak trials from "
    "strong ones' weights, fifo runs every trial to the end.",
)
@click.option(
    "--searcher",
    type=click.Choice(["optuna", "random"]),
    default="optuna",
    show_default=True,
    help="How Ray Tune draws configs: Optuna's [search].sampler through Ray, or Ray's random sampling.",
)
@click.option(
    "--cpus-per-trial", type=click.FloatRange(min=0.0), default=1.0, show_default=True, help="Ray: CPUs per trial."
)
@click.option(
    "--gpus-per-trial",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="Ray: GPUs per trial (fractional, e.g. 0.25 = four trials per GPU).",
)
@click.option("--address", help="Ray: address of a running cluster (HOST:PORT or auto) [default: a local Ray].")
def tune_cmd(
    plugin: str | None,
    pipeline: str | None,
    profile: str | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    out: str | None,
    engine: str,
    trials: int | None,
    jobs: int | None,
    device: str | None,
    seed: int | None,
    threads: int | None,
    scheduler: str,
    searcher: str,
    cpus_per_trial: float,
    gpus_per_trial: float,
    address: str | None,
) -> None:
    """Search hyperparameters: every trial is a run; writes best_config.toml, trials.csv, plots, report.md.

    \b
    Examples:
      mlcore tune --plugin trc-control --config search.toml --out tunes/trc
      mlcore tune --plugin trc-control --config search.toml --out tunes/trc --trials 40   # resume, extend
      mlcore tune --plugin trc-control --config search.toml --jobs 2
      mlcore tune --plugin trc-control --config search.toml --engine ray --scheduler asha
      mlcore run --config tunes/trc/best_config.toml                                     # reproduce the best
    """
    from mlcore import api
    from mlcore.errors import ConfigError

    if config_file is None and not any(o.startswith("search.") for o in overrides):
        raise ConfigError("pass --config FILE with a [search] table (see docs/tuning.md)")
    result = api.tune(
        plugin,
        pipeline=pipeline,
        profile=profile,
        config=config_file,
        overrides=overrides,
        out=out,
        engine=engine,
        trials=trials,
        jobs=jobs,
        device=device,
        seed=seed,
        threads=threads,
        scheduler=scheduler,
        searcher=searcher,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        address=address,
    )
    pruned, failed = result.count("pruned"), result.count("fail")
    click.echo(
        f"{len(result.trials)} trials ({result.count('complete')} complete, {pruned} pruned, {failed} failed), "
        f"{result.epochs} epochs"
    )
    if result.best_trial is not None:
        click.echo(f"best trial {result.best_trial}: {result.best_value:.6g}")
        for key, value in result.best_params.items():
            click.echo(f"  {key} = {value!r}")
        click.echo(f"reproduce: mlcore run --config {result.best_config}")
    click.echo(f"study directory: {result.out_dir}")
    click.echo("  report.md  trials.csv  best_config.toml  plots/")


def register(cli: click.Group) -> None:
    """Attach ``mlcore tune`` to the group."""
    cli.add_command(tune_cmd)
