"""Four procedural parts, sliced layer by layer (perimeters + rectilinear infill) into real G-code.

Like the original collection: ``benchy`` (a boat hull with a cabin, like 3DBenchy), ``bearing``
(races and balls; its circles are written as G2/G3 arcs), ``nautilus`` (a logarithmic-spiral
shell) and ``boat`` (a second, slender boat with a mast). Shapes come from ``shapely`` (offsets for
the perimeters, clipping for the infill); the files look like slicer output (``;LAYER:n``,
``;TYPE:...``, absolute E with ``G92 E0`` per layer), so any real slicer file can replace them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlcore.config import in_range
from mlcore.errors import ConfigError
from mlcore.io import atomic_write_text

__all__ = ["PARTS", "SliceConfig", "part_gcode", "write_part"]

CENTER = (125.0, 105.0)
FILAMENT_AREA = math.pi * (1.75 / 2) ** 2


@attrs.define
class SliceConfig:
    """How the procedural parts are sliced.

    Attributes:
        layer_height: mm per layer; ``scale``: size factor of every part (1 = about 60 mm long).
        line_width: extrusion width (mm); ``perimeters``: walls per island; ``infill_spacing``: mm between infill lines.
        speed_perimeter, speed_infill, speed_travel: mm/s (written as ``F`` in mm/min).
    """

    layer_height: float = attrs.field(default=0.2, validator=in_range(0.05, 5.0))
    scale: float = attrs.field(default=1.0, validator=in_range(0.1, 5.0))
    line_width: float = attrs.field(default=0.45, validator=in_range(0.1, 3.0))
    perimeters: int = attrs.field(default=2, validator=in_range(1, 10))
    infill_spacing: float = attrs.field(default=2.5, validator=in_range(0.2, 50.0))
    speed_perimeter: float = attrs.field(default=45.0, validator=in_range(1.0, 1000.0))
    speed_infill: float = attrs.field(default=80.0, validator=in_range(1.0, 1000.0))
    speed_travel: float = attrs.field(default=150.0, validator=in_range(1.0, 1000.0))


# ---------------------------------------------------------------- shapes (mm, part-local, z in [0, height])
def _hull(length: float, width: float, t_exp: float = 3.0) -> Any:
    """A hull outline: a flat transom at the stern, a pointed bow (``t_exp`` sets the bow's fullness)."""
    from shapely.geometry import Polygon

    t = np.linspace(0.0, 1.0, 60)
    half = width / 2 * np.sqrt(np.clip(1.0 - t**t_exp, 0.0, 1.0))
    x = -length / 2 + length * t
    pts = np.concatenate([np.column_stack([x, half]), np.column_stack([x[::-1], -half[::-1]])])
    return Polygon(pts).buffer(0)


def _benchy(z: float, s: float) -> tuple[Any, list[tuple[float, float, float, float]]]:
    from shapely.geometry import Point, box

    height = 48.0 * s
    flare = 0.75 + 0.25 * min(z / (0.45 * height), 1.0)
    hull = _hull(60.0 * s, 31.0 * s * flare)
    deck = 0.45 * height
    if z < 0.12 * height:
        return hull, []
    if z < deck:
        return hull.difference(hull.buffer(-2.4 * s)), []  # the hollow hull: walls only
    cabin = box(-22 * s, -10 * s, 4 * s, 10 * s)
    shape = cabin.difference(box(-20 * s, -8 * s, 2 * s, 8 * s))
    if z > 0.6 * height and z < 0.8 * height:  # windows cut the cabin walls
        shape = shape.difference(box(-16 * s, -12 * s, -4 * s, 12 * s))
    if z > 0.85 * height:
        shape = Point(-14 * s, 0).buffer(4.5 * s).difference(Point(-14 * s, 0).buffer(3 * s))  # the chimney
    return shape, []


def _bearing(z: float, s: float) -> tuple[Any, list[tuple[float, float, float, float]]]:
    from shapely.geometry import Point

    height = 14.0 * s
    outer = Point(0, 0).buffer(22 * s, 128).difference(Point(0, 0).buffer(16.5 * s, 128))
    inner = Point(0, 0).buffer(11.5 * s, 128).difference(Point(0, 0).buffer(6 * s, 128))
    # (cx, cy, r, +1 for an outer boundary / -1 for a hole's)
    circles = [(0.0, 0.0, 22 * s, 1.0), (0.0, 0.0, 16.5 * s, -1.0), (0.0, 0.0, 11.5 * s, 1.0), (0.0, 0.0, 6 * s, -1.0)]
    shape = outer.union(inner)
    ball_r = 2.4 * s
    dz = z - height / 2
    if abs(dz) < ball_r:
        r = math.sqrt(ball_r**2 - dz**2)
        for k in range(10):
            a = 2 * math.pi * k / 10
            cx, cy = 14 * s * math.cos(a), 14 * s * math.sin(a)
            shape = shape.union(Point(cx, cy).buffer(r, 64))
            circles.append((cx, cy, r, 1.0))
    return shape, circles


def _nautilus(z: float, s: float) -> tuple[Any, list[tuple[float, float, float, float]]]:
    from shapely.geometry import Polygon

    height = 24.0 * s
    dome = 0.55 + 0.45 * math.sqrt(max(1.0 - (2 * z / height - 1) ** 2, 0.0))
    theta = np.linspace(0.5 * math.pi, 4.2 * math.pi, 220)
    r_out = 3.2 * s * np.exp(0.19 * theta) * dome
    r_in = r_out * 0.62
    outer = np.column_stack([r_out * np.cos(theta), r_out * np.sin(theta)])
    inner = np.column_stack([r_in * np.cos(theta), r_in * np.sin(theta)])[::-1]
    shell = Polygon(np.concatenate([outer, inner])).buffer(0)
    return shell, []


def _boat(z: float, s: float) -> tuple[Any, list[tuple[float, float, float, float]]]:
    from shapely.affinity import rotate
    from shapely.geometry import Point, box

    height = 30.0 * s
    hull = rotate(_hull(70.0 * s, 20.0 * s * (0.8 + 0.2 * min(z / (0.4 * height), 1.0)), t_exp=1.6), 30, origin=(0, 0))
    if z < 0.1 * height:
        return hull, []
    if z < 0.4 * height:
        return hull.difference(hull.buffer(-2.0 * s)), []
    mast = Point(8 * s, 4 * s).buffer(2.2 * s)
    if z < 0.6 * height:
        cabin = rotate(box(-24 * s, -6 * s, -6 * s, 6 * s), 30, origin=(0, 0))
        return cabin.difference(cabin.buffer(-1.6 * s)).union(mast), []
    return mast, []


#: name -> (shape of a layer at height z for scale s, part height at scale 1)
PARTS: dict[str, tuple[Callable[[float, float], tuple[Any, list[tuple[float, float, float, float]]]], float]] = {
    "benchy": (_benchy, 48.0),
    "bearing": (_bearing, 14.0),
    "nautilus": (_nautilus, 24.0),
    "boat": (_boat, 30.0),
}


# ---------------------------------------------------------------- slicing
class _Writer:
    def __init__(self, cfg: SliceConfig) -> None:
        self.cfg = cfg
        self.lines: list[str] = []
        self.e = 0.0
        self.pos = (0.0, 0.0)
        self.e_per_mm = cfg.line_width * cfg.layer_height / FILAMENT_AREA

    def travel(self, x: float, y: float) -> None:
        self.lines.append(f"G0 F{self.cfg.speed_travel * 60:.0f} X{x:.3f} Y{y:.3f}")
        self.pos = (x, y)

    def line(self, x: float, y: float, speed: float) -> None:
        d = math.hypot(x - self.pos[0], y - self.pos[1])
        if d < 1e-4:
            return
        self.e += d * self.e_per_mm
        self.lines.append(f"G1 F{speed * 60:.0f} X{x:.3f} Y{y:.3f} E{self.e:.5f}")
        self.pos = (x, y)

    def arc_circle(self, cx: float, cy: float, r: float, speed: float) -> None:
        """A full circle as two G3 half arcs, starting at angle 0."""
        sx, sy = cx + r, cy
        self.travel(sx, sy)
        for ex, ey, ci, cj in ((cx - r, cy, -r, 0.0), (sx, sy, r, 0.0)):
            self.e += math.pi * r * self.e_per_mm
            self.lines.append(f"G3 F{speed * 60:.0f} X{ex:.3f} Y{ey:.3f} I{ci:.3f} J{cj:.3f} E{self.e:.5f}")
        self.pos = (sx, sy)

    def ring(self, coords: np.ndarray, speed: float) -> None:
        self.travel(float(coords[0, 0]), float(coords[0, 1]))
        for x, y in coords[1:]:
            self.line(float(x), float(y), speed)


def _polygons(geom: Any) -> list[Any]:
    if geom.is_empty:
        return []
    return list(geom.geoms) if hasattr(geom, "geoms") else [geom]


def _slice_layer(w: _Writer, shape: Any, circles: list[tuple[float, float, float, float]], index: int) -> None:
    from shapely.affinity import rotate
    from shapely.geometry import LineString, MultiLineString

    cfg = w.cfg
    lw = cfg.line_width
    ox, oy = CENTER
    for k in range(cfg.perimeters):
        wall = shape.buffer(-(k + 0.5) * lw, join_style=2 if not circles else 1)
        w.lines.append(f";TYPE:{'WALL-OUTER' if k == 0 else 'WALL-INNER'}")
        if circles:
            # circular walls are written as arcs (as arc-fitting slicers do)
            for cx, cy, r, sign in circles:
                rr = r - sign * (k + 0.5) * lw
                if rr > lw:
                    w.arc_circle(cx + ox, cy + oy, rr, cfg.speed_perimeter)
            continue
        for poly in _polygons(wall):
            for ring in (poly.exterior, *poly.interiors):
                w.ring(np.asarray(ring.coords) + np.array([ox, oy]), cfg.speed_perimeter)
    inner = shape.buffer(-(cfg.perimeters + 0.3) * lw)
    if inner.is_empty:
        return
    w.lines.append(";TYPE:FILL")
    angle = 45.0 if index % 2 == 0 else -45.0
    rotated = rotate(inner, -angle, origin=(0, 0))
    minx, miny, maxx, maxy = rotated.bounds
    ys = np.arange(miny + cfg.infill_spacing / 2, maxy, cfg.infill_spacing)
    lines = MultiLineString([[(minx - 1, y), (maxx + 1, y)] for y in ys])
    clipped = rotated.intersection(lines)
    segments = [
        g
        for g in (clipped.geoms if hasattr(clipped, "geoms") else [clipped])
        if isinstance(g, LineString) and not g.is_empty
    ]
    segments.sort(key=lambda g: (round(g.coords[0][1], 3), g.coords[0][0]))
    for i, seg in enumerate(segments):
        pts = np.asarray(rotate(seg, angle, origin=(0, 0)).coords) + np.array([ox, oy])
        if i % 2:
            pts = pts[::-1]
        w.travel(float(pts[0, 0]), float(pts[0, 1]))
        for x, y in pts[1:]:
            w.line(float(x), float(y), cfg.speed_infill)


def part_gcode(name: str, config: SliceConfig | None = None) -> str:
    """The G-code of part ``name`` (one of :data:`PARTS`), every layer, as text."""
    if name not in PARTS:
        raise ConfigError(f"dataset.parts: unknown part {name!r} (allowed: {', '.join(PARTS)})")
    cfg = config or SliceConfig()
    shape_of, height = PARTS[name]
    n_layers = max(1, round(height * cfg.scale / cfg.layer_height))
    w = _Writer(cfg)
    w.lines += [
        f"; {name} generated by mlcore-printer-corrector (procedural part, {n_layers} layers)",
        "M104 S210 ; hotend",
        "M140 S60 ; bed",
        "G21 ; mm",
        "G90 ; absolute positions",
        "M82 ; absolute extrusion",
        "G28 ; home",
        "G92 E0",
    ]
    for layer in range(n_layers):
        z = (layer + 1) * cfg.layer_height
        shape, circles = shape_of(z - cfg.layer_height / 2, cfg.scale)
        w.lines += [f";LAYER:{layer}", f"G1 Z{z:.3f} F600", "G92 E0"]
        w.e = 0.0
        _slice_layer(w, shape, circles, layer)
    w.lines += ["M104 S0", "M140 S0", "M84 ; motors off", ""]
    return "\n".join(w.lines)


def write_part(name: str, path: Path, config: SliceConfig | None = None) -> Path:
    """Write part ``name`` as a G-code file at ``path`` (atomically)."""
    atomic_write_text(path, part_gcode(name, config))
    return path
