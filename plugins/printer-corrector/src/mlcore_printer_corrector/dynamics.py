"""Axis dynamics that make the tracking error physical: a base-excited mass-spring-damper per axis.

The motor drives the belt at the reference position ``r``; the carriage (mass ``m``) follows through
the belt's stiffness ``k`` and damping ``c``: ``m x'' = k (r - x) + c (r' - x')``. The error
``e = r - x`` then obeys ``e'' + 2 zeta omega e' + omega^2 e = r''`` (``omega^2 = k/m``,
``2 zeta omega = c/m``). Options, as on real printers:

- position-dependent frequency: the belt between motor and carriage is shorter on one side of the
  bed, so ``omega`` varies linearly with the axis position by ``+- position_variation`` across the bed;
- a second mode (frame/gantry) of frequency ``second_mode_hz``, damping and participation
  ``second_mode_gain`` (modal superposition: ``e = e1 + g e2``, each driven by ``r''``);
- step quantisation: the motor only reaches multiples of ``1 / steps_per_mm``, so the carriage
  follows the quantised reference (the error is still measured against the exact one).

The integration is semi-implicit Euler at ``sim_rate`` (default 2 kHz, 40+ steps per period of the
stiffest mode); ``r''`` enters as the velocity change over each step, so the velocity jumps at
junctions (which junction deviation allows) are integrated exactly. The loop is plain Python
floats (faster than numpy on two scalars per step; no ODE library handles the velocity impulses
and the position-dependent frequency on a fixed grid any faster).
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from mlcore.config import in_range

__all__ = ["DynamicsConfig", "simulate_axes"]


@attrs.define
class DynamicsConfig:
    """Belt-compliance model of the X and Y axes.

    Attributes:
        freq_x, freq_y: natural frequencies (Hz) at the bed centre (printers: 25-50 Hz).
        damping_x, damping_y: damping ratios (printers: 0.05-0.1).
        position_variation: relative change of the frequency from the bed centre to its edge (0 = constant).
        bed_size: bed width (mm) over which the frequency varies; the centre is at ``bed_size / 2``.
        second_mode_hz: frequency of a second (frame) mode (0 = none); ``second_mode_damping``,
            ``second_mode_gain`` its damping ratio and participation.
        steps_per_mm: motor steps per mm (0 = no quantisation; 80 = 1/16 microstepping on GT2 belts).
        sim_rate: integration rate (Hz).
    """

    freq_x: float = attrs.field(default=32.0, validator=in_range(1.0, 1000.0))
    freq_y: float = attrs.field(default=26.0, validator=in_range(1.0, 1000.0))
    damping_x: float = attrs.field(default=0.07, validator=in_range(0.0, 2.0))
    damping_y: float = attrs.field(default=0.06, validator=in_range(0.0, 2.0))
    position_variation: float = attrs.field(default=0.15, validator=in_range(0.0, 0.9))
    bed_size: float = attrs.field(default=250.0, validator=in_range(1.0, 10000.0))
    second_mode_hz: float = attrs.field(default=0.0, validator=in_range(0.0, 1000.0))
    second_mode_damping: float = attrs.field(default=0.03, validator=in_range(0.0, 2.0))
    second_mode_gain: float = attrs.field(default=0.3, validator=in_range(0.0, 10.0))
    steps_per_mm: float = attrs.field(default=80.0, validator=in_range(0.0, 100000.0))
    sim_rate: float = attrs.field(default=2000.0, validator=in_range(100.0, 100000.0))


def _integrate(
    r: list[float],
    v: list[float],
    dt: float,
    f0: float,
    zeta: float,
    var: float,
    center: float,
    half: float,
    f2: float,
    zeta2: float,
    gain2: float,
) -> list[float]:
    """The error ``e`` (mode 1 + gain2 * mode 2) on the grid of ``r``/``v`` (one axis, plain floats)."""
    w0 = 2.0 * math.pi * f0
    w2 = 2.0 * math.pi * f2
    e = de = e2 = de2 = 0.0
    out = [0.0] * len(r)
    prev_v = v[0] if v else 0.0
    second = f2 > 0.0 and gain2 > 0.0
    for i in range(1, len(r)):
        w = w0 * (1.0 + var * (r[i] - center) / half) if var else w0
        dv = v[i] - prev_v
        prev_v = v[i]
        de += dv - dt * (2.0 * zeta * w * de + w * w * e)
        e += dt * de
        if second:
            de2 += dv - dt * (2.0 * zeta2 * w2 * de2 + w2 * w2 * e2)
            e2 += dt * de2
            out[i] = e + gain2 * e2
        else:
            out[i] = e
    return out


def simulate_axes(pos: np.ndarray, vel: np.ndarray, config: DynamicsConfig | None = None) -> np.ndarray:
    """The actual X/Y carriage positions for a reference sampled at ``config.sim_rate``.

    Args:
        pos, vel: ``(n, >=2)`` reference (commanded) positions and velocities on the integration grid.

    Returns:
        ``(n, 2)`` actual positions; the tracking error is ``pos[:, :2] - actual``.
    """
    cfg = config or DynamicsConfig()
    dt = 1.0 / cfg.sim_rate
    half = cfg.bed_size / 2.0
    actual = np.empty((pos.shape[0], 2))
    for axis, (f0, zeta) in enumerate(((cfg.freq_x, cfg.damping_x), (cfg.freq_y, cfg.damping_y))):
        r = pos[:, axis]
        e = np.asarray(
            _integrate(
                r.tolist(),
                vel[:, axis].tolist(),
                dt,
                f0,
                zeta,
                cfg.position_variation,
                half,
                half,
                cfg.second_mode_hz,
                cfg.second_mode_damping,
                cfg.second_mode_gain,
            )
        )
        commanded = np.round(r * cfg.steps_per_mm) / cfg.steps_per_mm if cfg.steps_per_mm > 0 else r
        actual[:, axis] = commanded - e
    return actual
