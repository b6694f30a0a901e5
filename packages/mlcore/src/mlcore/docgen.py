"""Render reference docs from the code: docs/hooks.md (hook specs) and docs/cli.md (click help)."""

from __future__ import annotations

import inspect
import re
import textwrap

from mlcore import hookspecs

HEADER = """# Hook reference

<!-- Generated from packages/mlcore/src/mlcore/hookspecs.py by `python tools/render_hooks_doc.py`;
     edit the docstrings there, not this file. A test fails when the two disagree. -->

A plugin is a module named by an entry point in the group `mlcore.plugins`:

```toml
[project.entry-points."mlcore.plugins"]
my-plugin = "my_plugin.plugin"
```

The module implements any of the hooks below with `@mlcore.hookimpl` and may declare the core
API range it supports with `MLCORE_API = ">=1.0,<2"`. Each `register_*` hook returns a list of
`mlcore.ComponentSpec`; specs name import paths, so listing plugins never imports torch.
See [writing-a-plugin.md](writing-a-plugin.md) for a tutorial.
"""


def hook_names() -> list[str]:
    """Names of every hook spec, in source order."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    funcs = [f for _, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, marker)]
    return [f.__name__ for f in sorted(funcs, key=lambda f: f.__code__.co_firstlineno)]


def _docstring_to_markdown(doc: str) -> str:
    """Turn ``Example::`` literal blocks into fenced Python code."""
    lines = textwrap.dedent(doc).strip("\n").splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1])
            i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i])
                i += 1
            out += ["", "```python", textwrap.dedent("\n".join(block)).strip("\n"), "```", ""]
            continue
        out.append(line)
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def render_hooks_markdown() -> str:
    """The full ``docs/hooks.md`` text."""
    parts = [HEADER]
    for name in hook_names():
        func = getattr(hookspecs, name)
        sig = str(inspect.signature(func)).replace("'", "")
        first_line = func.__doc__.strip().splitlines()[0]
        doc = func.__doc__.strip().split("\n", 1)[1] if "\n" in func.__doc__.strip() else ""
        body = first_line + "\n" + textwrap.dedent(doc)
        parts.append(f"## `{name}{sig}`\n\n{_docstring_to_markdown(body)}")
    return "\n".join(parts)


CLI_HEADER = """# Command line

<!-- Generated from the click commands by `python tools/render_hooks_doc.py`; a test fails when stale. -->

Every command has a Python twin in `mlcore.api` (see the table in [architecture.md](architecture.md)).
User mistakes print one line, `error: ...`, and exit with code 2 (config) or 1 (other); `-v` shows
debug logs, `-q` only warnings. Listing commands accept `--json`.
Plugins can add their own commands (hook `register_commands`); they appear in `mlcore --help`.
"""


def render_cli_markdown() -> str:
    """The full ``docs/cli.md`` text: the help of every core command (plugin commands excluded)."""
    import click

    from mlcore.cli import main as cli_main

    cli_main._register_commands()
    group = cli_main.cli
    parts = [CLI_HEADER]

    def walk(cmd: click.Command, path: list[str], parent: click.Context | None) -> None:
        settings = {"terminal_width": 100, "max_content_width": 100, **cmd.context_settings}
        ctx = click.Context(cmd, info_name=path[-1], parent=parent, **settings)
        parts.append(f"## `{' '.join(path)}`\n\n```text\n{cmd.get_help(ctx)}\n```\n")
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.commands):
                walk(cmd.commands[name], [*path, name], ctx)

    walk(group, ["mlcore"], None)
    return "\n".join(parts)
