"""Entry point of the ``mlcore`` command: the group, logging flags and one-line error handling."""

from __future__ import annotations

import logging
import sys

import click

from mlcore._version import PLUGIN_API_VERSION, __version__
from mlcore.errors import MlcoreError, RunInterrupted

log = logging.getLogger("mlcore")

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s" if verbosity > 0 else "%(message)s")
    logging.getLogger().setLevel(level)
    for noisy in ("matplotlib", "PIL", "h5py", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", message=f"mlcore %(version)s (plugin API {PLUGIN_API_VERSION})")
@click.option("-v", "--verbose", count=True, help="More output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """mlcore: train, evaluate and compare learned dynamics, planning and control models.

    \b
    Start here:
      mlcore plugins                      what is installed
      mlcore list model                   the models you can use
      mlcore run --plugin trc-control     a whole experiment with its quick profile
      mlcore compare runs/*               runs side by side
    """
    _setup_logging(-1 if quiet else verbose)


def _register_commands() -> None:
    from mlcore.cli import checkpoints, compare, data, inspect, pipeline, run, tune

    for module in (inspect, run, checkpoints, data, compare, tune, pipeline):
        module.register(cli)
    from mlcore.cli import doctor, run_many

    run_many.register(cli)
    doctor.register(cli)


def _register_plugin_commands() -> None:
    from mlcore.registry import get_registry

    get_registry().call_commands(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line (``error: ...``) and exit non-zero, never a traceback."""
    _register_commands()
    _register_plugin_commands()
    try:
        cli.main(args=argv, prog_name="mlcore", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except RunInterrupted as exc:
        click.echo(str(exc), err=True)  # not an error: the run stopped cleanly and can be resumed
        return exc.exit_code
    except MlcoreError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
