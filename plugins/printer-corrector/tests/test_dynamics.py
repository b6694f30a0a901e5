"""The belt model: quasi-static lag a/omega^2, ringing at the natural frequency, quantisation, position dependence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcore_printer_corrector.dynamics import DynamicsConfig, simulate_axes

RATE = 5000.0


def ramp(accel: float, seconds: float, start: float = 125.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * RATE)) / RATE
    x = start + 0.5 * accel * t**2
    v = accel * t
    pos = np.column_stack([x, np.full_like(x, 125.0)])
    vel = np.column_stack([v, np.zeros_like(v)])
    return pos, vel


def plain(**kw) -> DynamicsConfig:
    return DynamicsConfig(position_variation=0.0, steps_per_mm=0.0, sim_rate=RATE, **kw)


def test_constant_acceleration_lags_by_a_over_omega_squared():
    cfg = plain(freq_x=30.0, damping_x=0.2)
    pos, vel = ramp(2000.0, 0.5)
    err = pos[:, 0] - simulate_axes(pos, vel, cfg)[:, 0]
    assert err[-1] == pytest.approx(2000.0 / (2 * math.pi * 30.0) ** 2, rel=0.01)


def test_a_velocity_jump_rings_at_the_natural_frequency():
    cfg = plain(freq_x=40.0, damping_x=0.02)
    t = np.arange(int(0.5 * RATE)) / RATE
    v = np.where(t > 0.01, 20.0, 0.0)  # a junction: velocity jumps by 20 mm/s
    x = 125.0 + np.cumsum(v) / RATE
    pos = np.column_stack([x, np.full_like(x, 125.0)])
    vel = np.column_stack([v, np.zeros_like(v)])
    err = pos[:, 0] - simulate_axes(pos, vel, cfg)[:, 0]
    assert np.abs(err).max() == pytest.approx(20.0 / (2 * math.pi * 40.0), rel=0.08)  # dv / omega
    tail = err[t > 0.02]
    crossings = np.flatnonzero(np.diff(np.sign(tail)) != 0)
    period = 2 * np.mean(np.diff(crossings)) / RATE
    assert 1 / period == pytest.approx(40.0 * math.sqrt(1 - 0.02**2), rel=0.02)


def test_second_mode_adds_its_own_frequency():
    pos, vel = ramp(3000.0, 0.3)
    one = pos[:, 0] - simulate_axes(pos, vel, plain(freq_x=30.0))[:, 0]
    two = pos[:, 0] - simulate_axes(pos, vel, plain(freq_x=30.0, second_mode_hz=90.0, second_mode_gain=0.5))[:, 0]
    # the quasi-static lag grows by gain * a / omega2^2
    assert two[-1] - one[-1] == pytest.approx(0.5 * 3000.0 / (2 * math.pi * 90.0) ** 2, rel=0.1)


def test_step_quantisation_at_rest():
    cfg = DynamicsConfig(position_variation=0.0, steps_per_mm=80.0, sim_rate=RATE)
    pos = np.tile([[100.004, 50.01]], (100, 1))
    err = pos - simulate_axes(pos, np.zeros_like(pos), cfg)
    np.testing.assert_allclose(err[-1], pos[-1] - np.round(pos[-1] * 80) / 80, atol=1e-12)


def test_frequency_depends_on_the_position():
    pos, vel = ramp(2000.0, 0.25, start=10.0)  # between the bed edge and the centre
    lag_plain = pos[:, 0] - simulate_axes(pos, vel, plain(freq_x=30.0, damping_x=0.3))[:, 0]
    cfg = DynamicsConfig(freq_x=30.0, damping_x=0.3, position_variation=0.2, steps_per_mm=0.0, sim_rate=RATE)
    lag_var = pos[:, 0] - simulate_axes(pos, vel, cfg)[:, 0]
    x_end = pos[-1, 0]
    w = 2 * math.pi * 30.0 * (1 + 0.2 * (x_end - 125.0) / 125.0)
    assert lag_var[-1] == pytest.approx(2000.0 / w**2, rel=0.03)
    assert lag_var[-1] > lag_plain[-1]  # softer belt on this side
