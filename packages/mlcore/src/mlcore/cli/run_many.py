"""``mlcore run-many``: several runs at once, each in its own process (:mod:`mlcore.parallel`)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from mlcore.cli.run import threads_option


@click.command("run-many")
@click.option("--plugin", "-p", help="Plugin whose pipeline every job runs (the default for --jobs entries).")
@click.option("--pipeline", help="Pipeline of the plugin [default: its first].")
@click.option("--profile", help="Config profile of every job [default: quick].")
@click.option(
    "--config", "-c", "config_file", type=click.Path(path_type=Path), help="TOML/YAML config shared by every job."
)
@click.option(
    "--vary",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="Values to try for a config key; one job per combination of all --vary (repeatable).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value in every job (repeatable; values parsed as TOML).",
)
@click.option(
    "--jobs",
    "jobs_file",
    type=click.Path(path_type=Path),
    help="TOML/YAML file listing the jobs ([[jobs]] tables) instead of --vary.",
)
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    help="Jobs running at once in each group [default: max_parallel of --jobs, else 1].",
)
@threads_option
@click.option(
    "--out", "-o", required=True, metavar="DIR", help="Directory of the jobs' run directories and results.json."
)
@click.option("--progress/--no-progress", default=True, help="Show one live progress line per job.")
def run_many_cmd(
    plugin: str | None,
    pipeline: str | None,
    profile: str | None,
    config_file: Path | None,
    vary: tuple[str, ...],
    overrides: tuple[str, ...],
    jobs_file: Path | None,
    max_parallel: int | None,
    threads: int | None,
    out: str,
    progress: bool,
) -> None:
    """Run several trainings at once, each in its own process; a table and DIR/results.json at the end.

    Each job runs like `mlcore run` into DIR/<job name>. The thread setting (--threads) is divided
    between the jobs running at the same time. A failing job is reported and does not stop the
    others. Ctrl-C stops every job after its checkpoint; the same command again resumes them
    (completed jobs are not trained again).

    \b
    Examples:
      mlcore run-many --plugin trc-control --vary model.size=small,medium --max-parallel 2 --out runs/sizes
      mlcore run-many --plugin sine --vary model.hidden=16,32 --vary trainer.lr=0.01,0.001 --out runs/grid
      mlcore run-many --jobs jobs.toml --out runs/compare
    """
    from mlcore import parallel
    from mlcore.errors import ConfigError, MlcoreError, RunInterrupted

    if not str(out).strip():
        raise ConfigError("--out '': the jobs' directory must be a non-empty path")
    out_dir = Path(out)
    file_limit: int | dict[str, int] | None = None
    if jobs_file is not None:
        if vary:
            raise ConfigError("--jobs FILE lists the jobs already; drop --vary")
        if config_file is not None:
            raise ConfigError("--jobs FILE: give each job its config in the file; drop --config")
        jobs, file_limit = parallel.load_jobs(
            jobs_file, out_dir, plugin=plugin, pipeline=pipeline, profile=profile, overrides=overrides
        )
    else:
        if plugin is None:
            raise ConfigError("pass --plugin NAME with --vary KEY=V1,V2 (or list the jobs with --jobs FILE)")
        if not vary:
            raise ConfigError("pass at least one --vary KEY=V1,V2,... (or list the jobs with --jobs FILE)")
        jobs = parallel.vary_jobs(
            plugin,
            out_dir,
            parallel.parse_vary(vary),
            pipeline=pipeline,
            profile=profile,
            config=config_file,
            overrides=overrides,
        )
    limit = max_parallel if max_parallel is not None else file_limit if file_limit is not None else 1
    results_path = out_dir / "results.json"
    for job in jobs:
        if job.out.resolve() == results_path.resolve():
            raise ConfigError(
                f"job {job.name!r} would write its run into {results_path}, run-many's results file; rename it"
            )
    done: dict[str, parallel.JobResult] = {}
    start = time.perf_counter()

    def record(result: parallel.JobResult) -> None:  # results.json grows as each job finishes
        done[result.name] = result
        ordered = [done[j.name] for j in jobs if j.name in done]
        parallel.write_results(results_path, ordered, max_parallel=limit, wall_time=time.perf_counter() - start)

    out_dir.mkdir(parents=True, exist_ok=True)
    results = parallel.run_jobs(jobs, max_parallel=limit, threads=threads, progress=progress, on_finish=record)
    parallel.write_results(results_path, results, max_parallel=limit, wall_time=time.perf_counter() - start)
    click.echo(parallel.results_table(results))
    click.echo(f"results: {results_path}")
    if any(r.status == "interrupted" for r in results):
        raise RunInterrupted(
            f"interrupted: the same command resumes the jobs (completed ones are kept): {out_dir}",
            run_dir=str(out_dir),
        )
    failed = [r.name for r in results if r.status == "failed"]
    if failed:
        raise MlcoreError(
            f"{len(failed)} of {len(results)} jobs failed ({', '.join(failed)}); the others' results are kept"
        )


def register(cli: click.Group) -> None:
    """Attach the command to the group."""
    cli.add_command(run_many_cmd)
