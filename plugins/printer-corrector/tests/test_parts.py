"""The procedural parts are real G-code: they read back with layers, walls, infill and (bearing) arcs."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.errors import ConfigError
from mlcore_printer_corrector.gcode import read_gcode
from mlcore_printer_corrector.parts import PARTS, SliceConfig, part_gcode, write_part

FAST = SliceConfig(layer_height=1.0)


@pytest.mark.parametrize("name", list(PARTS))
def test_each_part_reads_back_layer_by_layer(name):
    text = part_gcode(name, FAST)
    tp = read_gcode(f"{name}.gcode", text=text)
    height = PARTS[name][1]
    assert len(tp.layers) == round(height / 1.0)
    assert {"WALL-OUTER", "FILL"} <= set(tp.kinds)
    assert tp.e_delta.sum() > 0
    assert tp.skipped["M104"] == 2
    xy = tp.end[tp.e_delta > 0, :2]
    assert xy[:, 0].min() > 50 and xy[:, 0].max() < 200  # on the bed, around its centre


def test_bearing_circles_are_arcs():
    text = part_gcode("bearing", FAST)
    assert sum(line.startswith("G3 ") for line in text.splitlines()) >= 8 * 14


def test_write_part_and_unknown_part(tmp_path):
    path = write_part("boat", tmp_path / "boat.gcode", FAST)
    assert len(read_gcode(path).layers) == 30
    with pytest.raises(ConfigError, match=r"unknown part 'dragon' \(allowed: benchy, bearing, nautilus, boat\)"):
        part_gcode("dragon")


def test_infill_alternates_direction():
    tp = read_gcode("b", text=part_gcode("benchy", FAST))
    fill = tp.kinds.index("FILL")
    angles = []
    for layer in tp.layers[:2]:
        sel = tp.select((tp.layer == layer) & (tp.kind == fill) & (tp.e_delta > 0))
        d = sel.end[:, :2] - sel.start[:, :2]
        angles.append(np.median(np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 180.0))
    assert sorted(round(a) for a in angles) == [45, 135]
