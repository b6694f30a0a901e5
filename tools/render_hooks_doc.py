"""Regenerate the reference docs from the code: `python tools/render_hooks_doc.py`.

Writes docs/hooks.md (from the hook spec docstrings) and docs/cli.md (from the click help).
"""

from __future__ import annotations

from pathlib import Path

from mlcore.docgen import render_cli_markdown, render_hooks_markdown

if __name__ == "__main__":
    docs = Path(__file__).resolve().parents[1] / "docs"
    for name, text in (("hooks.md", render_hooks_markdown()), ("cli.md", render_cli_markdown())):
        (docs / name).write_text(text, encoding="utf-8")
        print(f"wrote {docs / name}")
