"""The ``mlcore`` group: plugin commands are isolated, cannot hijack core commands, errors stay one line."""

from __future__ import annotations

import json

import click

from mlcore import ComponentSpec, hookimpl
from mlcore.cli.main import cli as core_cli
from mlcore.cli.main import main
from mlcore.registry import Registry

RAISING_HOOK_WITH_COMMAND = '''
import click
from mlcore import hookimpl

@hookimpl
def register_models():
    raise ValueError("hook exploded")

@hookimpl
def register_commands(cli):
    @cli.command(name="evil-cmd")
    def evil():
        """Should never be reachable."""
        click.echo("evil")
'''

ADDS_THEN_RAISES = '''
import click
from mlcore import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command(name="half-cmd")
    def half():
        """Added before the hook failed."""

    raise RuntimeError("after adding")
'''

HIJACKS_RUN = '''
import click
from mlcore import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command(name="run")
    def run():
        """Pretend to be the core's run."""
        click.echo("hijacked")

    @cli.command(name="innocent")
    def innocent():
        """Added alongside the hijack."""
'''


def test_plugin_whose_hook_raised_has_no_command(fake_site, cli):
    site = fake_site("raiser", RAISING_HOOK_WITH_COMMAND)
    plugins = {p["name"]: p for p in json.loads(cli(["plugins", "--json"], pythonpath=site).stdout)}
    assert plugins["raiser"]["status"] == "failed"
    helped = cli(["--help"], pythonpath=site)
    assert helped.returncode == 0, helped.stderr
    assert "evil-cmd" not in helped.stdout
    called = cli(["evil-cmd"], pythonpath=site)
    assert called.returncode != 0 and "evil" not in called.stdout


def test_commands_added_before_a_failure_are_removed(fake_site, cli):
    site = fake_site("half", ADDS_THEN_RAISES)
    helped = cli(["--help"], pythonpath=site)
    assert helped.returncode == 0, helped.stderr
    assert "half-cmd" not in helped.stdout
    reason = {p["name"]: p for p in json.loads(cli(["plugins", "--json"], pythonpath=site).stdout)}["half"]["reason"]
    assert reason == "register_commands raised RuntimeError: after adding"


def test_a_plugin_cannot_replace_a_core_command(fake_site, cli):
    site = fake_site("hijack", HIJACKS_RUN)
    result = cli(["run", "--help"], pythonpath=site)
    assert result.returncode == 0, result.stderr
    assert "Run a plugin's pipeline end to end" in result.stdout
    plugins = {p["name"]: p for p in json.loads(cli(["plugins", "--json"], pythonpath=site).stdout)}
    assert plugins["hijack"]["status"] == "failed"
    assert "tried to replace the command 'run' (from the core); refused" in plugins["hijack"]["reason"]
    assert "innocent" not in cli(["--help"], pythonpath=site).stdout


class _First:
    @staticmethod
    @hookimpl
    def register_commands(cli):
        @cli.command(name="shared")
        def shared() -> None:
            """First."""

    @staticmethod
    @hookimpl
    def register_models():
        return [ComponentSpec("first_model", "x:y")]


class _Second:
    @staticmethod
    @hookimpl
    def register_commands(cli):
        @cli.command(name="shared")
        def shared() -> None:
            """Second."""


def test_a_plugin_cannot_replace_another_plugins_command():
    group = click.Group(commands=[click.Command("run")])
    reg = Registry.from_modules({"bbb": _Second, "aaa": _First})
    reg.call_commands(group)
    assert group.commands["shared"].help == "First."  # plugins are asked in name order
    assert reg.plugins["bbb"].status == "failed"
    assert "'shared' (from aaa)" in reg.plugins["bbb"].reason
    assert reg.plugins["aaa"].status == "ok" and reg.get("model", "first_model").plugin == "aaa"


def test_core_commands_are_all_registered():
    main(["--version"])
    assert {"run", "train", "evaluate", "export", "compare", "plugins", "list", "show"} <= set(core_cli.commands)
