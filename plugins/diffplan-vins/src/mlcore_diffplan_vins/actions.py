"""The grid action sets, in counter-clockwise order (no torch import here).

``4abs-cc`` is N, W, S, E: rotating a map by 90° counter-clockwise (``np.rot90(m, 1)``) maps
an action ``a`` to ``(a + 1) % 4``. The optional 8-action set is N, NW, W, SW, S, SE, E, NE,
where the same rotation maps ``a`` to ``(a + 2) % 8``. Offsets are ``(d_row, d_col)`` with row 0
at the top of the map (north).
"""

from __future__ import annotations

__all__ = ["ACTION_NAMES", "ACTION_OFFSETS", "rotation_shift"]

#: ``num_actions`` -> offsets ``(d_row, d_col)`` in counter-clockwise order starting at north.
ACTION_OFFSETS: dict[int, tuple[tuple[int, int], ...]] = {
    4: ((-1, 0), (0, -1), (1, 0), (0, 1)),
    8: ((-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1)),
}

#: ``num_actions`` -> action names, same order as :data:`ACTION_OFFSETS`.
ACTION_NAMES: dict[int, tuple[str, ...]] = {
    4: ("N", "W", "S", "E"),
    8: ("N", "NW", "W", "SW", "S", "SE", "E", "NE"),
}


def rotation_shift(num_actions: int) -> int:
    """Shift of the action index under one 90° counter-clockwise rotation of the map."""
    return num_actions // 4
