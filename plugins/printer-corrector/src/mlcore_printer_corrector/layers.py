"""Layer selection: ``all``, ``sampled:N`` (N layers evenly spread over the height), ``first:N`` or ``0,5,10``."""

from __future__ import annotations

import re

import numpy as np

__all__ = ["check_layer_spec", "select_layers"]

_SPEC = re.compile(r"^(all|sampled:\d+|first:\d+|\d+(,\d+)*)$")


def check_layer_spec(spec: str) -> None:
    """Raise ``ValueError`` (one line, with the allowed forms) when ``spec`` is not a layer selection."""
    if (
        not isinstance(spec, str)
        or not _SPEC.match(spec.replace(" ", ""))
        or spec.replace(" ", "") in ("sampled:0", "first:0")
    ):
        raise ValueError(f"layers={spec!r} is not a layer selection (allowed: all, sampled:N, first:N, or 0,5,10)")


def select_layers(spec: str, available: list[int]) -> list[int]:
    """The layers of ``available`` (sorted indices) that ``spec`` selects.

    ``sampled:N`` takes N layers evenly spread from the first to the last (all of them when there
    are fewer), as the original data collection did; explicit indices not in the file are dropped.
    """
    check_layer_spec(spec)
    spec = spec.replace(" ", "")
    if not available or spec == "all":
        return list(available)
    if spec.startswith("sampled:"):
        n = int(spec.split(":")[1])
        if n >= len(available):
            return list(available)
        idx = np.unique(np.round(np.linspace(0, len(available) - 1, n)).astype(int))
        return [available[i] for i in idx]
    if spec.startswith("first:"):
        return list(available[: int(spec.split(":")[1])])
    wanted = {int(v) for v in spec.split(",")}
    return [layer for layer in available if layer in wanted]
