"""The G-code reader: machine state, arcs, layers and feature types of several slicers, one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcore.errors import DataError
from mlcore_printer_corrector.gcode import read_gcode


def read(text: str):
    return read_gcode("t.gcode", text=text)


def test_absolute_relative_g92_units_and_feed():
    tp = read("G21\nG90\nG1 X10 Y0 F1200\nG91\nG1 X5 Y5\nG90\nG92 X0 Y0\nG1 X1 Y1\nG20\nG1 X1 Y0 F60\n")
    np.testing.assert_allclose(tp.end[:, :2], [[10, 0], [15, 5], [16, 6], [15 + 25.4, 5]])
    assert tp.feed.tolist() == pytest.approx([20.0, 20.0, 20.0, 25.4])  # F is mm/min (inch/min after G20)
    assert tp.line.tolist() == [3, 5, 8, 10]


def test_extrusion_modes_and_retractions():
    tp = read("M82\nG1 X1 E1\nG1 X2 E1.5\nG92 E0\nG1 X3 E0.2\nM83\nG1 X4 E0.3\nG1 E-0.8 F2400\n")
    assert tp.e_delta.tolist() == pytest.approx([1.0, 0.5, 0.2, 0.3, -0.8])
    # the retraction is a move without XYZ travel
    assert np.allclose(tp.end[-1], tp.start[-1])


def test_arcs_lie_on_the_circle_and_turn_the_right_way():
    tp = read("G1 X10 Y0 F600\nG2 X0 Y-10 I-10 J0 E1\n")  # clockwise quarter around the origin
    arc = tp.select(tp.line == 2)
    radii = np.hypot(arc.end[:, 0], arc.end[:, 1])
    assert radii == pytest.approx(np.full(len(arc), 10.0), abs=1e-9)
    assert arc.end[-1, :2] == pytest.approx([0, -10])
    assert len(arc) == math.ceil(0.5 * math.pi * 10 / 1.0)  # 1 mm segments, as Marlin cuts them
    angles = np.unwrap(np.arctan2(arc.end[:, 1], arc.end[:, 0]))
    assert np.all(np.diff(angles) < 0)  # clockwise
    assert arc.e_delta.sum() == pytest.approx(1.0)
    ccw = read("G1 X10 Y0\nG3 X0 Y10 R10\n")
    assert ccw.end[-1, :2] == pytest.approx([0, 10])
    mid = ccw.end[len(ccw) // 2, :2]
    assert mid[0] > 0 and mid[1] > 0 and np.hypot(*mid) == pytest.approx(10.0)  # the short way, counter-clockwise
    full = read("G1 X10 Y0\nG3 X10 Y0 I-10 J0\n")
    assert len(full) - 1 == math.ceil(2 * math.pi * 10)


@pytest.mark.parametrize(
    "style, text",
    [
        ("cura", ";FLAVOR:Marlin\n;LAYER:0\n;TYPE:WALL-OUTER\nG1 X1 Y0 E1\n;LAYER:1\n;TYPE:FILL\nG1 X2 Y0 E2\n"),
        (
            "prusaslicer",
            ";LAYER_CHANGE\n;Z:0.2\n;TYPE:Perimeter\nG1 X1 Y0 E1\n;LAYER_CHANGE\n;TYPE:Solid infill\nG1 X2 Y0 E2\n",
        ),
        (
            "simplify3d",
            "; layer 1, Z = 0.200\n; feature outer perimeter\nG1 X1 Y0 E1\n"
            "; layer 2, Z = 0.400\n; feature infill\nG1 X2 Y0 E2\n",
        ),
        ("slic3r (no markers)", "G1 Z0.2\nG1 X1 Y0 E1\nG1 Z0.4\nG1 X2 Y0 E2\n"),
    ],
)
def test_layers_of_each_slicer_style(style, text):
    tp = read(text)
    xy = tp.select(np.linalg.norm(tp.end[:, :2] - tp.start[:, :2], axis=1) > 0)
    assert len(tp.layers) == 2, style
    assert xy.layer[1] == xy.layer[0] + 1, style
    if style != "slic3r (no markers)":
        assert len(tp.kinds) == 3  # "", and one type per layer


def test_other_commands_are_counted_and_skipped():
    tp = read("M104 S200\nM104 S210\nG4 P100\nT0\nG28\nSTART_PRINT BED_TEMP=60\nEXCLUDE_OBJECT_END\nG1 X1\n")
    assert tp.skipped == {"M104": 2, "G4": 1, "T0": 1, "G28": 1, "START_PRINT": 1, "EXCLUDE_OBJECT_END": 1}
    assert len(tp) == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("G1 X1\nhello world\n", r"t\.gcode:2: cannot read this line"),
        ("G1 X1\nG1 Xabc Y3\n", r"t\.gcode:2: parameter X has no number"),
        ("G2 X1 Y1\n", r"t\.gcode:1: G2 needs I/J \(centre offset\) or R \(radius\)"),
        ("G1 X0 F0\n", r"t\.gcode:1: feed rate F=0 must be positive"),
        ("G1 X10\nG2 X0 Y0 R1\n", r"t\.gcode:2: arc radius R=1 is shorter than half the chord"),
    ],
)
def test_unreadable_lines_are_one_line_errors_with_the_line_number(text, message):
    with pytest.raises(DataError, match=message) as info:
        read(text)
    assert "\n" not in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"G-code file .*nope\.gcode does not exist"):
        read_gcode(tmp_path / "nope.gcode")
