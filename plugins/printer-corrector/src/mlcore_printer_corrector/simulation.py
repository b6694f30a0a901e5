"""One layer through the printer: plan -> reference at the sample rate -> axis dynamics -> tracking error.

:func:`simulate_layer` is what the dataset records and what the compensation loop re-runs with a
pre-distorted reference.
"""

from __future__ import annotations

import attrs
import numpy as np

from mlcore.errors import ConfigError
from mlcore_printer_corrector.dynamics import DynamicsConfig, simulate_axes
from mlcore_printer_corrector.gcode import Toolpath
from mlcore_printer_corrector.planner import PlannerConfig, plan, sample

__all__ = ["LayerTrace", "simulate_layer"]


@attrs.frozen
class LayerTrace:
    """A simulated layer at the sample rate.

    Attributes:
        features: ``(n, 4)`` reference ``x_ref, y_ref, vx_ref, vy_ref`` (mm, mm/s).
        error: ``(n, 2)`` tracking error ``reference - actual`` (mm).
        t: ``(n,)`` sample times (s).
    """

    features: np.ndarray
    error: np.ndarray
    t: np.ndarray


def _ratio(sample_rate: float, sim_rate: float) -> int:
    k = sim_rate / sample_rate
    if abs(k - round(k)) > 1e-9 or round(k) < 1:
        raise ConfigError(
            f"dataset.dynamics.sim_rate={sim_rate:g} must be a whole multiple of dataset.sample_rate={sample_rate:g}"
        )
    return round(k)


def simulate_layer(
    path: Toolpath,
    planner: PlannerConfig,
    dynamics: DynamicsConfig,
    sample_rate: float = 100.0,
    correction: np.ndarray | None = None,
) -> LayerTrace:
    """Simulate the moves of ``path`` from rest; ``correction`` ``(n, 2)`` (mm, at the sample times)
    is added to the commanded X/Y (feed-forward compensation; linearly interpolated in between),
    while the error is still measured against the uncorrected reference."""
    k = _ratio(sample_rate, dynamics.sim_rate)
    p = plan(path, planner)
    fine = sample(p, dynamics.sim_rate)
    coarse_idx = np.arange(0, fine.t.shape[0], k)
    ref = fine.pos[:, :2]
    cmd_pos, cmd_vel = fine.pos[:, :2].copy(), fine.vel[:, :2].copy()
    if correction is not None:
        tc = fine.t[coarse_idx]
        if correction.shape != (tc.shape[0], 2):
            raise ValueError(f"correction has shape {correction.shape}, expected {(tc.shape[0], 2)}")
        for axis in range(2):
            c = np.interp(fine.t, tc, correction[:, axis])
            cmd_pos[:, axis] += c
            cmd_vel[:, axis] += np.gradient(c, fine.t) if c.shape[0] > 1 else 0.0
    actual = simulate_axes(cmd_pos, cmd_vel, dynamics)
    error = (ref - actual)[coarse_idx]
    feats = np.concatenate([fine.pos[coarse_idx, :2], fine.vel[coarse_idx, :2]], axis=1)
    return LayerTrace(features=feats, error=error, t=fine.t[coarse_idx])
