"""Render reference docs from the code: docs/hooks.md (hook specs), docs/api.md (the public
Python API, from docstrings) and docs/cli.md (click help)."""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from typing import Any

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


def _fence(code: str) -> str:
    """``python`` for a literal block that is Python, ``text`` for a layout, a table or a sketch."""
    try:
        compile(code, "<docstring>", "exec")
    except SyntaxError:
        return "text"
    return "python"


_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]*?\.)?([^`.]+)`")


def _docstring_to_markdown(doc: str) -> str:
    """Turn ``Example::`` literal blocks into fenced Python code."""
    lines = textwrap.dedent(doc).strip("\n").splitlines()
    lines = [_ROLE.sub(r"`\2`", line) for line in lines]
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
            code = textwrap.dedent("\n".join(block)).strip("\n")
            out += ["", f"```{_fence(code)}", code, "```", ""]
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


def core_commands(group: Any) -> Any:
    """A copy of the ``mlcore`` click group holding only the core's commands.

    Plugin commands (hook ``register_commands``) join the same group object when ``main()`` has run
    in this process (e.g. earlier in a test session); they are not part of ``docs/cli.md``.
    """
    import copy

    def is_core(cmd: Any) -> bool:
        module = getattr(getattr(cmd, "callback", None), "__module__", "") or ""
        return module == "mlcore" or module.startswith("mlcore.")

    core = copy.copy(group)
    core.commands = {name: cmd for name, cmd in group.commands.items() if is_core(cmd)}
    return core


def render_cli_markdown() -> str:
    """The full ``docs/cli.md`` text: the help of every core command (plugin commands excluded)."""
    import click

    from mlcore.cli import main as cli_main

    cli_main._register_commands()
    group = core_commands(cli_main.cli)
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


#: The public API a plugin author uses, module by module (rendered into docs/api.md, in this order).
#: Anything not listed here is internal and may change without notice.
PUBLIC_API: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "mlcore",
        (
            "ComponentSpec",
            "hookimpl",
            "get_registry",
            "build",
            "run",
            "train",
            "evaluate",
            "export",
            "generate_data",
            "load_checkpoint",
            "MlcoreError",
            "ConfigError",
            "DataError",
            "CheckpointError",
            "PluginError",
            "ComponentNotFoundError",
        ),
    ),
    ("mlcore.errors", ("RunInterrupted",)),
    ("mlcore.config", ("one_of", "in_range", "positive", "non_negative", "component_field", "ComponentConfig")),
    ("mlcore.data", ("DataModule",)),
    (
        "mlcore.pipelines",
        ("Pipeline", "Recipe", "RecipePipeline", "Parts", "ExportConfig", "RunContext", "link_dimensions"),
    ),
    ("mlcore.training", ("Trainer", "TrainerConfig", "FitResult", "Callback", "EarlyStopping")),
    ("mlcore.training.checkpoint", ("make_meta", "build_model")),
    ("mlcore.evaluation", ("Evaluator", "predict")),
    ("mlcore.evaluation.regression", ("RegressionEvaluator", "RegressionEvaluatorConfig")),
    (
        "mlcore.evaluation.rollout",
        ("autoregressive_rollout", "horizon_errors", "group_errors", "rollout_metrics"),
    ),
    ("mlcore.report", ("write_report",)),
    ("mlcore.api", ("tune", "RunOptions", "run_experiment", "experiment_status")),
    ("mlcore.parallel", ("Job", "JobResult", "run_jobs", "vary_jobs", "load_jobs")),
    ("mlcore.training.batch_size", ("find_batch_size", "find_run_batch_size")),
    ("mlcore.doctor", ("diagnose",)),
    ("mlcore.io", ("atomic_write", "atomic_write_text", "atomic_write_json")),
    ("mlcore.exporting", ("export_model", "ExportResult")),
    ("mlcore.testing", ("PluginContract", "ContractError")),
)

API_HEADER = """# Python API

<!-- Generated from the docstrings by `python tools/render_hooks_doc.py` (`hatch run docs`);
     edit the docstrings, not this file. A test fails when the two disagree. -->

Everything a plugin needs, by the module to import it from. Names not on this page are internal
(modules named `_x.py`, helpers not listed) and may change without notice. The CLI's Python twins
(`mlcore.run`, `mlcore.evaluate`, ...) are in [architecture.md](architecture.md); the hooks a
plugin implements are in [hooks.md](hooks.md); the tutorial is [writing-a-plugin.md](writing-a-plugin.md).

| import from | names |
|---|---|
"""


def _signature(obj: Any, *, drop_self: bool = False) -> str:
    """``(a: int = 1, *, b: str = 'x') -> R`` with string annotations unquoted and factories as ``<factory>``."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    params = []
    for p in sig.parameters.values():
        if drop_self and p.name == "self":
            continue
        default = p.default
        if default is not inspect.Parameter.empty and repr(default) == "NOTHING":
            p = p.replace(default=_Factory())
        params.append(p)
    text = str(sig.replace(parameters=params))
    for name in re.findall(r"'([^']*)'", text):  # string annotations (from __future__ import annotations)
        if not any(f"{name!r}" == repr(p.default) for p in params):
            text = text.replace(f"'{name}'", name)
    return re.sub(r" at 0x[0-9a-f]+", "", text)


class _Factory:
    def __repr__(self) -> str:
        return "<factory>"


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return _docstring_to_markdown(doc) if doc else "(undocumented)\n"


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties defined by ``cls`` itself, in source order."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property):
            out.append((name, value))
    return out


def render_api_markdown() -> str:
    """The full ``docs/api.md`` text: every name of :data:`PUBLIC_API` with its signature and docstring."""
    parts = [API_HEADER.rstrip("\n")]
    for module, names in PUBLIC_API:
        parts.append(f"| `{module}` | {', '.join(f'`{n}`' for n in names)} |")
    parts.append("")
    for module, names in PUBLIC_API:
        mod = importlib.import_module(module)
        parts.append(f"## `{module}`\n")
        if mod.__doc__:
            parts.append(_docstring_to_markdown(mod.__doc__))
        for name in names:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) and hasattr(mod, "__getattr__"):  # a submodule shadows a lazy name
                obj = mod.__getattr__(name)
            kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "value"
            sig = _signature(obj) if kind != "value" else ""
            parts.append(
                f"### `{name}` ({kind})\n\n`{name}{sig}`\n\n{_doc(obj)}"
                if sig
                else f"### `{name}` ({kind})\n\n{_doc(obj)}"
            )
            if inspect.isclass(obj):
                for member, value in _members(obj):
                    if isinstance(value, property):
                        parts.append(f"#### `{name}.{member}` (property)\n\n{_doc(value)}")
                    else:
                        parts.append(f"#### `{name}.{member}{_signature(value, drop_self=True)}`\n\n{_doc(value)}")
    return "\n".join(parts)
