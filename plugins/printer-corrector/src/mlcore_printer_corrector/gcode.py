"""Reading G-code into a toolpath: straight segments with feed rate, extrusion, layer and feature type.

Tokenising is done by the maintained ``gcodeparser`` package (``parse_gcode_lines``: commands,
parameters, comments and line indices). This module adds the machine state on top of it, which
``gcodeparser`` does not model: absolute/relative positioning (G90/G91), absolute/relative
extrusion (M82/M83), position resets (G92), units (G20/G21), homing (G28 -> origin), arcs
(G2/G3 with I/J or R, cut into segments as Marlin does with ``MM_PER_ARC_SEGMENT``), layer
markers of PrusaSlicer/SuperSlicer/Orca (``;LAYER_CHANGE``), Cura (``;LAYER:n``), Simplify3D
(``; layer n``) and, without markers (old Slic3r), layers by the Z of extruding moves; feature
types (``;TYPE:...``, ``; feature ...``). Other commands, and the extended commands of Klipper or
RepRapFirmware macros (``START_PRINT BED_TEMP=60``), are counted and skipped.

What it cannot read is one :class:`~mlcore.errors.DataError` line naming the file and line::

    error: part.gcode:12: G1 parameter X has no number ('G1 Xabc Y3')
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlcore.errors import DataError

__all__ = ["Toolpath", "read_gcode"]

_LAYER_CURA = re.compile(r"^LAYER:\s*(-?\d+)", re.IGNORECASE)
_LAYER_S3D = re.compile(r"^layer\s+(\d+)", re.IGNORECASE)
_LAYER_PRUSA = re.compile(r"^LAYER_CHANGE\b", re.IGNORECASE)
_TYPE_CURA = re.compile(r"^TYPE:\s*(.+)$", re.IGNORECASE)
_TYPE_S3D = re.compile(r"^feature\s+(.+)$", re.IGNORECASE)
_AXES = ("X", "Y", "Z")
#: extended commands of Klipper / RepRapFirmware macros (``START_PRINT BED=60``, ``EXCLUDE_OBJECT_START``)
_EXTENDED = re.compile(r"^([A-Z][A-Z0-9_]+)(\s|$)")


@attrs.frozen
class Toolpath:
    """Straight moves read from G-code (arcs already cut into segments), in mm and mm/s.

    Attributes:
        start, end: ``(n, 3)`` machine positions (X, Y, Z) at the start and end of each move.
        feed: ``(n,)`` requested speed (mm/s) of each move.
        e_delta: ``(n,)`` filament fed during the move (mm; negative = retraction).
        layer: ``(n,)`` layer index (-1 before the first layer marker: start code).
        kind: ``(n,)`` index into ``kinds`` (the feature type in force, ``""`` when none).
        line: ``(n,)`` 1-based line number of the command the move comes from.
        kinds: the feature type names seen.
        skipped: ``{command: count}`` of the commands read but not simulated (M104, G4, T0, ...).
        source: where it came from (file name or ``"<text>"``).
    """

    start: np.ndarray
    end: np.ndarray
    feed: np.ndarray
    e_delta: np.ndarray
    layer: np.ndarray
    kind: np.ndarray
    line: np.ndarray
    kinds: tuple[str, ...]
    skipped: dict[str, int]
    source: str

    def __len__(self) -> int:
        return int(self.feed.shape[0])

    @property
    def layers(self) -> list[int]:
        """The layer indices that hold at least one XY move, sorted (start code, layer -1, excluded)."""
        xy = np.linalg.norm(self.end[:, :2] - self.start[:, :2], axis=1) > 0
        return sorted(int(v) for v in np.unique(self.layer[xy & (self.layer >= 0)]))

    def select(self, mask: np.ndarray) -> Toolpath:
        """The moves where ``mask`` is true (same kinds, skipped counts and source)."""
        return attrs.evolve(
            self,
            start=self.start[mask],
            end=self.end[mask],
            feed=self.feed[mask],
            e_delta=self.e_delta[mask],
            layer=self.layer[mask],
            kind=self.kind[mask],
            line=self.line[mask],
        )

    def layer_path(self, layer: int) -> Toolpath:
        """The moves of one layer."""
        return self.select(self.layer == layer)


class _Reader:
    """The machine state while reading (positions are machine coordinates in mm)."""

    def __init__(self, source: str, arc_segment_mm: float, default_feed: float) -> None:
        self.source = source
        self.arc_segment_mm = arc_segment_mm
        self.pos = [0.0, 0.0, 0.0]
        self.offset = [0.0, 0.0, 0.0]  # machine = logical + offset (G92)
        self.layer_z = -math.inf
        self.e = 0.0
        self.e_offset = 0.0
        self.abs_xyz = True
        self.abs_e = True
        self.scale = 1.0  # G20: 25.4
        self.feed = default_feed  # mm/s
        self.layer = -1
        self.markers = False
        self.kind = 0
        self.kinds: dict[str, int] = {"": 0}
        self.skipped: Counter[str] = Counter()
        self.rows: list[tuple[float, ...]] = []

    def fail(self, line_no: int, text: str, what: str) -> DataError:
        return DataError(f"{self.source}:{line_no}: {what} ({text.strip()[:80]!r})")

    # ---------------------------------------------------------------- comments
    def comment(self, text: str) -> None:
        if _LAYER_PRUSA.match(text):
            self.markers = True
            self.layer += 1
            return
        m = _LAYER_CURA.match(text) or _LAYER_S3D.match(text)
        if m:
            self.markers = True
            self.layer = max(int(m.group(1)), self.layer + 1) if _LAYER_S3D.match(text) else int(m.group(1))
            return
        m = _TYPE_CURA.match(text) or _TYPE_S3D.match(text)
        if m:
            name = m.group(1).strip()
            self.kind = self.kinds.setdefault(name, len(self.kinds))

    # ---------------------------------------------------------------- commands
    def number(self, params: dict[str, Any], key: str, line_no: int, text: str) -> float | None:
        value = params.get(key)
        if value is None:
            return None
        if value.__class__ is float or value.__class__ is int:
            if value != value or value in (math.inf, -math.inf):
                raise self.fail(line_no, text, f"parameter {key} is not finite")
            return float(value)
        raise self.fail(line_no, text, f"parameter {key} has no number")

    def target(self, params: dict[str, Any], line_no: int, text: str) -> list[float]:
        new = list(self.pos)
        for i, axis in enumerate(_AXES):
            if axis not in params:
                continue
            v = self.number(params, axis, line_no, text)
            assert v is not None
            v *= self.scale
            new[i] = v + self.offset[i] if self.abs_xyz else self.pos[i] + v
        return new

    def e_target(self, params: dict[str, Any], line_no: int, text: str) -> float:
        v = self.number(params, "E", line_no, text)
        if v is None:
            return self.e
        v *= self.scale
        return v + self.e_offset if self.abs_e else self.e + v

    def set_feed(self, params: dict[str, Any], line_no: int, text: str) -> None:
        f = self.number(params, "F", line_no, text)
        if f is not None:
            if f <= 0:
                raise self.fail(line_no, text, f"feed rate F={f:g} must be positive")
            self.feed = f * self.scale / 60.0

    def emit(self, a: list[float], b: list[float], de: float, line_no: int) -> None:
        if not self.markers and de > 0 and (a[0] != b[0] or a[1] != b[1]):
            # no layer markers (so far): a new layer starts when an extruding move is higher than before
            z = round(b[2], 4)
            if self.layer < 0 or z > self.layer_z:
                self.layer += 1
                self.layer_z = z
        self.rows.append((a[0], a[1], a[2], b[0], b[1], b[2], self.feed, de, self.layer, self.kind, line_no))

    def move(self, code: int, params: dict[str, Any], line_no: int, text: str) -> None:
        if "F" in params:
            self.set_feed(params, line_no, text)
        end = self.target(params, line_no, text)
        e_end = self.e_target(params, line_no, text)
        de = e_end - self.e
        if code in (0, 1):
            if end != self.pos or de != 0:
                self.emit(self.pos, end, de, line_no)
        else:
            self.arc(code == 2, params, end, de, line_no, text)
        self.pos, self.e = end, e_end

    def arc(
        self, clockwise: bool, params: dict[str, Any], end_: list[float], de: float, line_no: int, text: str
    ) -> None:
        start = np.asarray(self.pos)
        end = np.asarray(end_)
        i = self.number(params, "I", line_no, text)
        j = self.number(params, "J", line_no, text)
        r = self.number(params, "R", line_no, text)
        if i is None and j is None:
            if r is None:
                raise self.fail(line_no, text, f"G{2 if clockwise else 3} needs I/J (centre offset) or R (radius)")
            center = _center_from_radius(start[:2], end[:2], r * self.scale, clockwise)
            if center is None:
                raise self.fail(line_no, text, f"arc radius R={r:g} is shorter than half the chord")
        else:
            center = start[:2] + self.scale * np.array([i or 0.0, j or 0.0])
        radius = float(np.hypot(*(start[:2] - center)))
        if radius <= 0:
            raise self.fail(line_no, text, "arc has zero radius")
        a0 = math.atan2(start[1] - center[1], start[0] - center[0])
        a1 = math.atan2(end[1] - center[1], end[0] - center[0])
        sweep = a1 - a0
        if clockwise:
            sweep = sweep if sweep < 0 else sweep - 2 * math.pi
        else:
            sweep = sweep if sweep > 0 else sweep + 2 * math.pi
        if np.allclose(start[:2], end[:2]) and abs(sweep) < 1e-9:  # a full circle
            sweep = -2 * math.pi if clockwise else 2 * math.pi
        n = max(1, math.ceil(abs(sweep) * radius / self.arc_segment_mm))
        t = np.arange(1, n + 1) / n
        ang = a0 + sweep * t
        pts = np.column_stack([center[0] + radius * np.cos(ang), center[1] + radius * np.sin(ang)])
        pts[-1] = end[:2]
        zs = start[2] + (end[2] - start[2]) * t
        prev = list(self.pos)
        for k in range(n):
            nxt = [float(pts[k, 0]), float(pts[k, 1]), float(zs[k])]
            self.emit(prev, nxt, de / n, line_no)
            prev = nxt

    def g92(self, params: dict[str, Any], line_no: int, text: str) -> None:
        if not any(k in params for k in (*_AXES, "E")):  # bare G92: all axes to zero
            self.offset = list(self.pos)
            self.e_offset = self.e
            return
        for idx, axis in enumerate(_AXES):
            v = self.number(params, axis, line_no, text)
            if v is not None:
                self.offset[idx] = self.pos[idx] - v * self.scale
        v = self.number(params, "E", line_no, text)
        if v is not None:
            self.e_offset = self.e - v * self.scale

    def command(self, letter: str, code: int | None, params: dict[str, Any], line_no: int, text: str) -> None:
        if letter == "G" and code in (0, 1, 2, 3):
            self.move(code, params, line_no, text)
        elif letter == "G" and code == 90:
            self.abs_xyz = self.abs_e = True
        elif letter == "G" and code == 91:
            self.abs_xyz = self.abs_e = False
        elif letter == "M" and code == 82:
            self.abs_e = True
        elif letter == "M" and code == 83:
            self.abs_e = False
        elif letter == "G" and code == 92:
            self.g92(params, line_no, text)
        elif letter == "G" and code == 20:
            self.scale = 25.4
        elif letter == "G" and code == 21:
            self.scale = 1.0
        elif letter == "G" and code == 28:
            axes = [i for i, a in enumerate(_AXES) if a in params] or [0, 1, 2]
            for i in axes:
                self.pos[i] = 0.0
                self.offset[i] = 0.0
            self.skipped["G28"] += 1
        else:
            self.skipped[f"{letter}{'' if code is None else code}"] += 1


def _center_from_radius(a: np.ndarray, b: np.ndarray, r: float, clockwise: bool) -> np.ndarray | None:
    """Centre of the arc of radius ``|r|`` from ``a`` to ``b`` (negative ``r``: the long way round)."""
    chord = b - a
    d = float(np.hypot(*chord))
    if d == 0 or abs(r) < d / 2 - 1e-9:
        return None
    h = math.sqrt(max(r * r - d * d / 4, 0.0))
    mid = (a + b) / 2
    normal = np.array([-chord[1], chord[0]]) / d
    # G2 (clockwise) with positive R: the centre is on the right of a->b
    sign = -1.0 if clockwise else 1.0
    if r < 0:
        sign = -sign
    return mid + sign * h * normal  # type: ignore[no-any-return]


def read_gcode(
    source: str | Path, *, text: str | None = None, arc_segment_mm: float = 1.0, default_feed: float = 25.0
) -> Toolpath:
    """Read a G-code file (or ``text``, with ``source`` naming it in errors) into a :class:`Toolpath`.

    Args:
        source: the file to read; with ``text``, only the name used in error messages.
        text: G-code to read instead of the file.
        arc_segment_mm: length of the straight segments G2/G3 arcs are cut into (Marlin: 1 mm).
        default_feed: speed (mm/s) of moves before the first ``F``.

    Raises:
        DataError: the file is missing or unreadable, or a line cannot be read (file and line named).
    """
    from gcodeparser import parse_gcode_lines

    name = str(source)
    if text is None:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"G-code file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DataError(f"cannot read G-code file {path}: {exc.strerror}") from None
        name = path.name
    reader = _Reader(name, arc_segment_mm, default_feed)
    lines = text.splitlines()
    seen = np.zeros(len(lines), dtype=bool)
    for gl in parse_gcode_lines(text, include_comments=True):
        idx = gl.line_index
        if idx >= len(lines):  # a trailing line break
            continue
        seen[idx] = True
        line_no = idx + 1
        letter, code = gl.command
        if gl.comment:
            reader.comment(gl.comment)
        if letter == ";":
            continue
        reader.command(letter, code, gl.params, line_no, lines[idx])
    for idx in np.flatnonzero(~seen):
        raw = lines[idx].split(";", 1)[0].strip()
        ext = _EXTENDED.match(raw)
        if ext:  # a firmware macro: counted and skipped like other commands
            reader.skipped[ext.group(1)] += 1
            continue
        if raw and not raw.startswith(("%", "(")):  # '%' program markers and '(...)' comments are fine
            raise reader.fail(
                int(idx) + 1, lines[idx], "cannot read this line (expected G/M/T commands or a ; comment)"
            )
    rows = np.asarray(reader.rows, dtype=np.float64).reshape(-1, 11)
    kinds = tuple(sorted(reader.kinds, key=reader.kinds.__getitem__))
    return Toolpath(
        start=rows[:, 0:3],
        end=rows[:, 3:6],
        feed=rows[:, 6],
        e_delta=rows[:, 7],
        layer=rows[:, 8].astype(np.int64),
        kind=rows[:, 9].astype(np.int64),
        line=rows[:, 10].astype(np.int64),
        kinds=kinds,
        skipped=dict(reader.skipped),
        source=name,
    )
