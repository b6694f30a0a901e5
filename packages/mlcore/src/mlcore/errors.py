"""User-facing error types.

Every error a *user* can cause (a bad config value, a missing file, an unknown component)
derives from :class:`MlcoreError`. The CLI prints such errors as one line and exits with
``exit_code``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib


class MlcoreError(Exception):
    """Base class for errors caused by user input; printed as one line by the CLI."""

    exit_code = 1


class ConfigError(MlcoreError):
    """A config file, key or value is invalid. The message names the key and what is allowed."""

    exit_code = 2


class ComponentNotFoundError(MlcoreError):
    """No component of the requested kind and name is registered."""

    exit_code = 2


class PluginError(MlcoreError):
    """A plugin could not be loaded or used."""


class DataError(MlcoreError):
    """A data file is missing, corrupt or does not match what the component expects."""


class CheckpointError(MlcoreError):
    """A checkpoint is missing, corrupt, or belongs to another model or an incompatible version."""


def did_you_mean(name: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` naming the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class RunInterrupted(MlcoreError):
    """A run was stopped by Ctrl-C or SIGTERM after its last checkpoint was written.

    Raised by the trainer once ``checkpoints/last.pt`` and ``training_stats.json`` record the
    interruption, so no pipeline goes on to evaluate or report a half-trained model. The CLI
    prints the resume command and exits with 130 (the shell's code for an interrupt).
    """

    exit_code = 130

    def __init__(self, message: str, *, run_dir: str | None = None, signal_name: str = "SIGINT") -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.signal_name = signal_name
