"""The docs run: every ```python block of README.md and docs/*.md is executed, so a doc that drifts fails.

Per page, in a fresh interpreter whose working directory is a new temporary directory (first on
``sys.path``):

- a block preceded by ``<!-- file: path/to/module.py -->`` is written to that file (parent
  packages get an empty ``__init__.py``) instead of being run, so a tutorial can build a plugin;
- every other block runs, in page order, in one namespace per page;
- a block preceded by ``<!-- skip-test: reason -->`` is skipped; keep that for long runs only.

The tutorial (``writing-a-plugin.md``) trains small models and is marked slow; the other pages are quick.

The generated reference pages (``api.md``, ``cli.md``) quote docstring snippets that assume a
model and data at hand; their blocks are compiled, not run (their staleness tests keep them in
step with the code). ``hooks.md``'s examples are complete and run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMPILE_ONLY = {"api.md", "cli.md"}
SLOW = {"writing-a-plugin.md"}  # the tutorial trains a model five times: ~15-30 s on 2 shared cores

_BLOCK = re.compile(r"(?:<!--\s*(file|skip-test):?\s*([^>]*?)\s*-->\s*\n)?```python\n(.*?)```", re.DOTALL)


def blocks(page: Path) -> list[tuple[str, str, str, int]]:
    """``(marker, argument, code, line)`` of every ```python block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [
        (m.group(1) or "", m.group(2) or "", m.group(3), text.count("\n", 0, m.start(3)) + 1)
        for m in _BLOCK.finditer(text)
    ]


def test_blocks_are_found() -> None:
    """The extraction sees the tutorial's files and runnable blocks (guards against a broken regex)."""
    found = blocks(ROOT / "docs" / "writing-a-plugin.md")
    assert any(marker == "file" for marker, *_ in found)
    assert any(marker == "" for marker, *_ in found)


_RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for where, code in json.load(open(sys.argv[1], encoding="utf-8")):
    exec(compile(code, where, "exec"), namespace)
"""


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, marks=[pytest.mark.slow] if p.name in SLOW else [], id=p.name) for p in PAGES if blocks(p)],
)
def test_python_blocks_run(page: Path, tmp_path: Path) -> None:
    """The page's blocks run in a fresh interpreter, as a reader would run them."""
    runnable: list[tuple[str, str]] = []
    for marker, argument, code, line in blocks(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if marker == "skip-test":
            assert argument, f"{where}: say why the block is skipped (<!-- skip-test: reason -->)"
        elif marker == "file":
            target = tmp_path / argument
            target.parent.mkdir(parents=True, exist_ok=True)
            for parent in target.relative_to(tmp_path).parents:
                if parent != Path(".") and not (tmp_path / parent / "__init__.py").exists():
                    (tmp_path / parent / "__init__.py").write_text("", encoding="utf-8")
            target.write_text(code, encoding="utf-8")
        elif page.name in COMPILE_ONLY:
            compile(code, where, "exec")
        else:
            runnable.append((where, code))
    if not runnable:
        return
    (tmp_path / "_blocks.json").write_text(json.dumps(runnable), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MLCORE_PLUGINS"}
    env.update(MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")])))
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, "_blocks.json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{page.name}: a code block failed\n{done.stderr[-4000:]}"


def test_example_plugin_imports_only_documented_names() -> None:
    """The example plugin is what authors copy: every mlcore name it imports is on docs/api.md."""
    import ast

    from mlcore.docgen import PUBLIC_API

    public = {(module, name) for module, names in PUBLIC_API for name in names}
    used = set()
    for path in sorted((ROOT / "examples" / "mlcore-sine-plugin" / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mlcore":
                used |= {(node.module, alias.name) for alias in node.names}
            elif isinstance(node, ast.Import):
                assert not [a.name for a in node.names if a.name.startswith("mlcore.")], (
                    f"{path}: import a name instead"
                )
    assert used, "no mlcore import found: the walk is broken"
    assert sorted(used - public) == []
