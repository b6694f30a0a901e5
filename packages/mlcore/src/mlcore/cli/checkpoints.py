"""``mlcore evaluate`` and ``mlcore export``: everything comes from the checkpoint itself."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlcore.cli.run import threads_option
from mlcore.devices import DEVICE_CHOICES

_ckpt_option = click.option(
    "--checkpoint",
    "-k",
    type=click.Path(path_type=Path),
    required=True,
    help="A checkpoint, e.g. runs/<run>/checkpoints/best.pt.",
)


@click.command("evaluate")
@_ckpt_option
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), help="Where to write metrics.json [default: <run>/evaluation]."
)
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("--evaluator", help="Use another registered evaluator than the one the run used.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a dataset option (e.g. --set path=data/lqr_test/lqr_dataset.npz).",
)
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate_cmd(
    checkpoint: Path,
    out: Path | None,
    device: str,
    evaluator: str | None,
    overrides: tuple[str, ...],
    threads: int | None,
    as_json: bool,
) -> None:
    """Evaluate a checkpoint with the data and evaluator it was trained with."""
    from mlcore import api
    from mlcore.comparison import format_table

    metrics = api.evaluate(
        checkpoint, out_dir=out, device=device, evaluator=evaluator, data_overrides=overrides, threads=threads
    )
    if as_json:
        from mlcore.io import to_jsonable

        click.echo(json.dumps(to_jsonable(metrics), indent=2))
        return
    rows = [{"metric": k, "value": v} for k, v in metrics.items() if isinstance(v, int | float)]
    click.echo(format_table(rows))


@click.command("export")
@_ckpt_option
@click.option("--format", "-f", "fmt", type=click.Choice(["torchscript", "onnx"]), default="onnx", show_default=True)
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Output file [default: beside the checkpoint].")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Absolute tolerance of the outputs check.")
@click.option(
    "--onnx-exporter",
    type=click.Choice(["auto", "dynamo", "legacy"]),
    default="auto",
    show_default=True,
    help="ONNX only: torch.export-based (dynamo; auto falls back to legacy) or the faster, deprecated legacy one.",
)
def export_cmd(checkpoint: Path, fmt: str, out: Path | None, atol: float, onnx_exporter: str) -> None:
    """Export a checkpoint's model (dynamic batch axis) and check exported vs eager outputs."""
    from mlcore import api
    from mlcore.errors import MlcoreError

    result = api.export(checkpoint, format=fmt, out=out, atol=atol, onnx_exporter=onnx_exporter)
    via = f" ({result.exporter} exporter)" if fmt == "onnx" and getattr(result, "exporter", None) else ""
    click.echo(f"exported {fmt}{via}: {result.path}")
    click.echo(
        f"max |exported - eager| = {result.max_abs_diff:.3g} (tolerance atol={result.atol:g}, rtol={result.rtol:g})"
    )
    if not result.ok:
        raise MlcoreError(f"{result.path}: exported outputs differ from eager by {result.max_abs_diff:.3g} > tolerance")


def register(cli: click.Group) -> None:
    """Attach these commands to the group."""
    cli.add_command(evaluate_cmd)
    cli.add_command(export_cmd)
