"""docs/api.md is rendered from the docstrings of the public API and kept in step with them."""

from __future__ import annotations

import importlib
from pathlib import Path

from mlcore.docgen import PUBLIC_API, render_api_markdown

API_MD = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def test_api_md_is_current() -> None:
    assert API_MD.read_text(encoding="utf-8") == render_api_markdown(), (
        "docs/api.md is stale: run `hatch run docs` (python tools/render_hooks_doc.py)"
    )


def test_every_public_name_exists_and_is_documented() -> None:
    text = render_api_markdown()
    for module, names in PUBLIC_API:
        mod = importlib.import_module(module)
        for name in names:
            assert getattr(mod, name, None) is not None, f"{module}.{name} is documented but not importable"
    assert "(undocumented)" not in text


def test_api_md_answers_where_to_import_from() -> None:
    text = render_api_markdown()
    for module, name in [
        ("mlcore.training", "Trainer"),
        ("mlcore.training.checkpoint", "make_meta"),
        ("mlcore.evaluation.regression", "RegressionEvaluator"),
        ("mlcore.pipelines", "RecipePipeline"),
        ("mlcore.report", "write_report"),
        ("mlcore.io", "atomic_write_json"),
        ("mlcore.testing", "PluginContract"),
    ]:
        section = text.split(f"## `{module}`\n", 1)[1].split("\n## ", 1)[0]
        assert f"### `{name}`" in section, (module, name)
    # the override points, with their signatures
    assert "#### `Evaluator.compute(predictions: Any, targets: Any) -> dict[str, float]`" in text
    assert "#### `Callback.on_epoch_end(trainer: " in text  # the trainer's type may be a Protocol
    assert ", epoch: int, record: dict[str, Any]) -> None`" in text
    assert "#### `RecipePipeline.link(config: C, data: DataModule) -> C`" in text


def test_cli_md_leaves_out_plugin_commands_registered_in_this_process() -> None:
    """``main()`` adds plugin commands to the same click group; the rendered docs/cli.md must not change."""
    import click

    from mlcore.cli import main as cli_main
    from mlcore.docgen import render_cli_markdown

    before = render_cli_markdown()

    @click.command(name="zz-plugin-command")
    def plugin_command() -> None:
        """A plugin's command."""

    cli_main.cli.add_command(plugin_command)
    try:
        text = render_cli_markdown()
    finally:
        cli_main.cli.commands.pop("zz-plugin-command", None)
    assert "zz-plugin-command" not in text and text == before
    assert "## `mlcore run`" in text and "zz-plugin-command" not in cli_main.cli.commands
