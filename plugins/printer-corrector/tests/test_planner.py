"""The firmware planner: trapezoids, junction deviation, look-ahead (against a plain sequential planner)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcore_printer_corrector.gcode import Toolpath
from mlcore_printer_corrector.planner import PlannerConfig, junction_speeds, plan, sample


def path_of(points, feed=100.0) -> Toolpath:
    pts = np.asarray(points, dtype=float)
    pts = np.column_stack([pts, np.zeros(len(pts))]) if pts.shape[1] == 2 else pts
    n = len(pts) - 1
    return Toolpath(
        start=pts[:-1],
        end=pts[1:],
        feed=np.full(n, feed),
        e_delta=np.zeros(n),
        layer=np.zeros(n, dtype=int),
        kind=np.zeros(n, dtype=int),
        line=np.arange(1, n + 1),
        kinds=("",),
        skipped={},
        source="t",
    )


def sequential_speeds(path: Toolpath, cfg: PlannerConfig) -> np.ndarray:
    """Block entry speeds (and the final 0) the textbook way: one loop per pass, window by window."""
    a, n = cfg.acceleration, len(path)
    d = np.linalg.norm(path.end - path.start, axis=1)
    u = (path.end - path.start) / d[:, None]
    nominal = np.minimum(path.feed, cfg.max_speed)
    cap = [0.0]
    for k in range(1, n):
        j = junction_speeds(u[k - 1 : k], u[k : k + 1], a, cfg.junction_deviation)[0]
        cap.append(min(j, nominal[k - 1], nominal[k]))
    cap.append(0.0)
    window = cfg.lookahead - 1 if cfg.lookahead > 0 else n
    v = [0.0]
    for k in range(1, n + 1):
        # the most block k may enter with so that blocks k .. k+window-1 can still stop
        w = 0.0
        for m in range(min(n, k + window) - 1, k - 1, -1):
            w = math.sqrt(w * w + 2 * a * d[m])
            w = min(w, cap[m])
        if k == n:
            w = 0.0
        v.append(min(cap[k], w, math.sqrt(v[-1] ** 2 + 2 * a * d[k - 1])))
    return np.asarray(v)


def test_a_long_move_is_a_trapezoid():
    cfg = PlannerConfig(acceleration=2000.0, max_speed=500.0, lookahead=16)
    p = plan(path_of([[0, 0], [100, 0]], feed=100.0), cfg)
    t_acc = 100.0 / 2000.0
    assert p.duration.tolist() == pytest.approx([t_acc, (100 - 2 * 2.5) / 100.0, t_acc])
    traj = sample(p, 1000.0)
    speed = np.linalg.norm(traj.vel, axis=1)
    assert speed.max() == pytest.approx(100.0)
    assert traj.pos[-1, 0] == pytest.approx(100.0, abs=1e-6)
    accel = np.abs(np.diff(speed)) * 1000.0
    assert accel.max() <= 2000.0 + 1e-6


def test_a_short_move_is_a_triangle():
    p = plan(path_of([[0, 0], [1, 0]], feed=100.0), PlannerConfig(acceleration=2000.0))
    peak = math.sqrt(2000.0 * 1.0)  # accelerate over half, decelerate over half
    assert p.v0[2] == pytest.approx(peak)
    assert p.duration[1] == pytest.approx(0.0, abs=1e-12)


def test_junction_deviation_formula():
    a, jd = 3000.0, 0.013
    x, y = np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]])
    s = math.sin(math.pi / 4)
    assert junction_speeds(x, y, a, jd)[0] == pytest.approx(math.sqrt(a * jd * s / (1 - s)))
    assert junction_speeds(x, x, a, jd)[0] == math.inf  # straight on
    assert junction_speeds(x, -x, a, jd)[0] == 0.0  # reversal stops


def test_corner_speed_is_the_junction_limit():
    cfg = PlannerConfig(acceleration=3000.0, junction_deviation=0.013)
    p = plan(path_of([[0, 0], [50, 0], [50, 50]]), cfg)
    s = math.sin(math.pi / 4)
    assert p.entry[1] == pytest.approx(math.sqrt(3000.0 * 0.013 * s / (1 - s)))


@pytest.mark.parametrize("lookahead", [0, 2, 4, 16])
def test_scans_match_a_sequential_planner(lookahead):
    rng = np.random.default_rng(lookahead)
    pts = np.cumsum(rng.uniform(-3, 3, size=(60, 2)), axis=0)
    path = path_of(pts, feed=120.0)
    cfg = PlannerConfig(acceleration=4000.0, lookahead=lookahead)
    p = plan(path, cfg)
    np.testing.assert_allclose(np.append(p.entry, 0.0), sequential_speeds(path, cfg), rtol=1e-9, atol=1e-9)


def test_a_short_queue_limits_the_speed_of_many_short_moves():
    path = path_of([[i * 0.5, 0] for i in range(200)], feed=200.0)  # 0.5 mm collinear segments
    full = plan(path, PlannerConfig(acceleration=2000.0, lookahead=0))
    short = plan(path, PlannerConfig(acceleration=2000.0, lookahead=3))
    assert full.v0.max() == pytest.approx(200.0)
    # with 3 blocks queued, a block's exit must allow a stop within the next 2 blocks (1 mm)
    assert short.exit[50] == pytest.approx(math.sqrt(2 * 2000.0 * 1.0))
    assert short.total_time > full.total_time


def test_sampled_positions_follow_the_path():
    path = path_of([[0, 0], [20, 0], [20, 20], [0, 20]])
    traj = sample(plan(path, PlannerConfig()), 2000.0)
    on_path = np.isclose(traj.pos[:, 1], 0) | np.isclose(traj.pos[:, 0], 20) | np.isclose(traj.pos[:, 1], 20)
    assert on_path.all()
    step = np.linalg.norm(np.diff(traj.pos, axis=0), axis=1)
    assert step.max() <= 100.0 / 2000.0 + 1e-9  # never faster than the feed
    assert traj.pos[-1, :2] == pytest.approx([0, 20])
