"""The docs run: every ```python block of README.md and docs/*.md is executed, so a doc that drifts fails.

Per page, in a fresh temporary directory (the working directory, and first on ``sys.path``):

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

import os
import re
import sys
from pathlib import Path

import pytest

from mlcore.registry import set_registry

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


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, marks=[pytest.mark.slow] if p.name in SLOW else [], id=p.name) for p in PAGES if blocks(p)],
)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    restore = set_registry(None)  # a page may register plugins: give it its own registry
    before = set(sys.modules)
    namespace: dict[str, object] = {"__name__": f"doc_{page.stem.replace('-', '_')}"}
    try:
        for marker, argument, code, line in blocks(page):
            where = f"{page.relative_to(ROOT)}:{line}"
            if marker == "skip-test":
                assert argument, f"{where}: say why the block is skipped (<!-- skip-test: reason -->)"
                continue
            if marker == "file":
                target = tmp_path / argument
                target.parent.mkdir(parents=True, exist_ok=True)
                for parent in target.relative_to(tmp_path).parents:
                    if parent != Path(".") and not (tmp_path / parent / "__init__.py").exists():
                        (tmp_path / parent / "__init__.py").write_text("", encoding="utf-8")
                target.write_text(code, encoding="utf-8")
                continue
            compiled = compile(code, where, "exec")
            if page.name not in COMPILE_ONLY:
                exec(compiled, namespace)
    finally:
        restore()
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            if module is not None and str(getattr(module, "__file__", "") or "").startswith(str(tmp_path) + os.sep):
                del sys.modules[name]


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
