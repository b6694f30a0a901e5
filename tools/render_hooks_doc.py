"""Regenerate the reference docs from the code: `python tools/render_hooks_doc.py` (`hatch run docs`).

Writes docs/hooks.md (from the hook spec docstrings), docs/api.md (the public Python API, from
its docstrings) and docs/cli.md (from the click help).
"""

from __future__ import annotations

from pathlib import Path

from mlcore.docgen import render_api_markdown, render_cli_markdown, render_hooks_markdown

if __name__ == "__main__":
    docs = Path(__file__).resolve().parents[1] / "docs"
    pages = (
        ("hooks.md", render_hooks_markdown()),
        ("api.md", render_api_markdown()),
        ("cli.md", render_cli_markdown()),
    )
    for name, text in pages:
        (docs / name).write_text(text, encoding="utf-8")
        print(f"wrote {docs / name}")
