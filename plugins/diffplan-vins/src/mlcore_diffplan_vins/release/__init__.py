"""The model release: the release table, the ``release`` pipeline, ``load_pretrained`` and ``check-release``.

``load_pretrained`` and ``check_release`` are imported lazily (they need torch), so importing the
package for the table stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_release", "load_pretrained"]


def __getattr__(name: str) -> Any:
    """``load_pretrained`` (from :mod:`.loading`) and ``check_release`` (from :mod:`.check`), on first use."""
    if name == "load_pretrained":
        from mlcore_diffplan_vins.release.loading import load_pretrained

        return load_pretrained
    if name == "check_release":
        from mlcore_diffplan_vins.release.check import check_release

        return check_release
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
