"""``mlcore pipeline run|status FILE``: experiment files of cached stages (see :mod:`mlcore.experiment`)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("pipeline")
def pipeline_group() -> None:
    """Run an experiment file: stages (data, search, train, evaluate, compare, report) cached by input hash."""


def _table(result: object) -> str:
    from mlcore.experiment import ExperimentResult

    assert isinstance(result, ExperimentResult)
    rows = [("stage", "kind", "state", "hash", "seconds")]
    for s in result.stages:
        rows.append((s.name, s.kind, s.state, s.hash[:8], f"{s.seconds:.1f}" if s.seconds else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    for s in result.stages:
        if s.error:
            lines.append(f"{s.name}: {s.error}")
    return "\n".join(lines)


def _json(result: object) -> str:
    import attrs

    from mlcore.io import to_jsonable

    data = attrs.asdict(result)  # type: ignore[arg-type]
    return json.dumps(to_jsonable({**data, "ok": getattr(result, "ok", None)}), indent=2)


@pipeline_group.command("run")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--force", multiple=True, metavar="STAGE", help="Run STAGE (and what depends on it) even if cached.")
@click.option("--until", metavar="STAGE", help="Stop after STAGE.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def run_cmd(file: Path, force: tuple[str, ...], until: str | None, as_json: bool) -> None:
    """Run the stages of FILE in order; finished stages whose inputs did not change are skipped."""
    from mlcore.experiment import run_experiment

    result = run_experiment(file, force=force, until=until, progress=not as_json)
    click.echo(_json(result) if as_json else _table(result))


@pipeline_group.command("status")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(file: Path, as_json: bool) -> None:
    """Show each stage of FILE: completed, stale (inputs changed), failed or pending."""
    from mlcore.experiment import experiment_status

    result = experiment_status(file)
    click.echo(_json(result) if as_json else _table(result))


def register(cli: click.Group) -> None:
    """Attach these commands to the group."""
    cli.add_command(pipeline_group)
