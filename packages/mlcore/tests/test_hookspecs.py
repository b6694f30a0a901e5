"""Every hook spec is documented (with an example, rendered into docs/hooks.md) and exercised by a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcore import ComponentSpec, hookimpl, hookspecs
from mlcore.docgen import hook_names, render_hooks_markdown
from mlcore.registry import KIND_HOOKS, Registry

REPO = Path(__file__).resolve().parents[3]
HOOKS_MD = REPO / "docs" / "hooks.md"


def test_every_hook_has_a_docstring_with_an_example():
    names = hook_names()
    assert set(KIND_HOOKS) | {"register_commands"} == set(names)
    for name in names:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Example::" in doc and "@hookimpl" in doc, f"{name}: docstring needs a complete example"


@pytest.mark.skipif(not HOOKS_MD.exists(), reason="not in a source checkout")
def test_docs_hooks_md_is_rendered_from_the_specs():
    assert HOOKS_MD.read_text(encoding="utf-8") == render_hooks_markdown(), (
        "docs/hooks.md is stale: run `python tools/render_hooks_doc.py`"
    )
    text = HOOKS_MD.read_text(encoding="utf-8")
    for name in hook_names():
        assert f"## `{name}(" in text, f"docs/hooks.md has no section for {name}"


def test_every_hook_is_exercised_by_a_test_outside_this_file():
    sources = "\n".join(
        p.read_text(encoding="utf-8") for p in Path(__file__).parent.rglob("test_*.py") if p.name != Path(__file__).name
    )
    sources += ALL_HOOKS_PLUGIN
    missing = [n for n in hook_names() if n not in sources]
    assert not missing, f"hooks without a test: {missing}"


ALL_HOOKS_PLUGIN = '''
import click
from mlcore import ComponentSpec, hookimpl

@hookimpl
def register_datasets():
    return [ComponentSpec("d", "m:D", summary="dataset")]

@hookimpl
def register_models():
    return [ComponentSpec("mdl", "m:M")]

@hookimpl
def register_losses():
    return [ComponentSpec("l", "m:L")]

@hookimpl
def register_trainers():
    return [ComponentSpec("t", "m:T")]

@hookimpl
def register_evaluators():
    return [ComponentSpec("e", "m:E")]

@hookimpl
def register_pipelines():
    return [ComponentSpec("p", "m:P", profiles={"quick": {}})]

@hookimpl
def register_trackers():
    return [ComponentSpec("tr", "m:TR")]

@hookimpl
def register_callbacks():
    return [ComponentSpec("cb", "m:CB")]

@hookimpl
def register_commands(cli):
    @cli.command(name="hello-all")
    @click.argument("who")
    def hello(who):
        """Say hello."""
        click.echo(f"hello {who}")
'''


def test_all_hooks_register_their_kinds(fake_site, cli):
    site = fake_site("allhooks", ALL_HOOKS_PLUGIN)
    res = cli(["list", "--plugin", "allhooks", "--json"], pythonpath=site, env={"MLCORE_PLUGINS": "allhooks"})
    assert res.returncode == 0, res.stderr
    import json

    kinds = {(r["kind"], r["name"]) for r in json.loads(res.stdout)}
    assert kinds == {
        ("dataset", "d"),
        ("model", "mdl"),
        ("loss", "l"),
        ("trainer", "t"),
        ("evaluator", "e"),
        ("pipeline", "p"),
        ("tracker", "tr"),
        ("callback", "cb"),
    }
    hello = cli(["hello-all", "world"], pythonpath=site, env={"MLCORE_PLUGINS": "allhooks"})
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "hello world"
    assert "hello-all" in cli(["--help"], pythonpath=site, env={"MLCORE_PLUGINS": "allhooks"}).stdout


class _BadCommands:
    @staticmethod
    @hookimpl
    def register_commands(cli):
        raise RuntimeError("cannot add")

    @staticmethod
    @hookimpl
    def register_models():
        return [ComponentSpec("x", "m:X")]


def test_failing_register_commands_marks_plugin_failed():
    import click

    reg = Registry.from_modules({"bad": _BadCommands})
    reg.call_commands(click.Group())
    assert reg.plugins["bad"].status == "failed"
    assert "register_commands raised RuntimeError: cannot add" in reg.plugins["bad"].reason
    assert reg.components("model", "bad") == []


@pytest.mark.skipif(not (REPO / "docs" / "cli.md").exists(), reason="not in a source checkout")
def test_docs_cli_md_is_rendered_from_the_commands():
    from mlcore.docgen import render_cli_markdown

    text = render_cli_markdown()
    assert (REPO / "docs" / "cli.md").read_text(encoding="utf-8") == text, (
        "docs/cli.md is stale: run `python tools/render_hooks_doc.py`"
    )
    for command in ("run", "train", "evaluate", "export", "data generate", "compare", "plugins", "list", "show"):
        assert f"## `mlcore {command}`" in text
