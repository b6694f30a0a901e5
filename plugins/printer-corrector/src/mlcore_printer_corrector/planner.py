"""A firmware-like motion planner: moves -> trapezoidal velocity profiles -> a sampled reference trajectory.

It plans as Marlin/grbl do (hand-written here because no maintained package exposes such a planner
as arrays: ``pygcodedecode`` plans move by move in Python objects and needs pyvista, see the docs):

- each move (block) has a nominal speed ``min(F, max_speed)`` and one acceleration limit;
- the speed at the junction of two moves is limited by **junction deviation** (Marlin's
  ``JUNCTION_DEVIATION_MM``): ``v^2 = a * jd * sin(theta/2) / (1 - sin(theta/2))`` with theta the
  angle between the two directions (a reversal stops, a straight line keeps full speed), and
  never above either block's nominal speed;
- **look-ahead** over a queue of ``lookahead`` blocks (Marlin's ``BLOCK_BUFFER_SIZE``): a block's
  exit speed must allow a stop by the end of the last queued block; 0 plans over the whole path;
- each block then runs a trapezoid (accelerate, cruise, decelerate; a triangle when short).

Both look-ahead passes are scans (``minimum.accumulate`` of ``v^2 - 2 a s``), so a full print
plans in well under a second.
"""

from __future__ import annotations

import attrs
import numpy as np

from mlcore.config import in_range, positive
from mlcore_printer_corrector.gcode import Toolpath

__all__ = ["Plan", "PlannerConfig", "Trajectory", "junction_speeds", "plan", "sample"]


@attrs.define
class PlannerConfig:
    """Firmware motion settings.

    Attributes:
        acceleration: the acceleration limit (mm/s^2; Marlin ``DEFAULT_ACCELERATION``, 2000-10000 on printers).
        max_speed: the cap on any move's speed (mm/s).
        junction_deviation: Marlin's junction deviation (mm); Klipper's square-corner velocity
            ``scv`` corresponds to ``jd = scv^2 (sqrt(2) - 1) / acceleration`` (5 mm/s at 3000 mm/s^2: 0.0035 mm).
        lookahead: blocks in the planner queue (0 = the whole path).
    """

    acceleration: float = attrs.field(default=5000.0, validator=in_range(1.0, 100000.0))
    max_speed: float = attrs.field(default=200.0, validator=positive)
    junction_deviation: float = attrs.field(default=0.013, validator=in_range(0.0, 10.0))
    lookahead: int = attrs.field(default=16, validator=in_range(0, 10000))


@attrs.frozen
class Plan:
    """Piecewise-constant-acceleration phases (3 per block: accelerate, cruise, decelerate).

    Attributes:
        t0: ``(m,)`` phase start times (s); ``duration`` ``(m,)``.
        p0: ``(m, 3)`` position at the phase start; ``u`` ``(m, 3)`` unit direction (zero in dwells).
        v0: ``(m,)`` speed at the phase start; ``acc`` ``(m,)`` signed acceleration along ``u``.
        entry, exit: ``(n,)`` block entry and exit speeds; ``nominal`` ``(n,)``.
        total_time: the end of the last phase.
    """

    t0: np.ndarray
    duration: np.ndarray
    p0: np.ndarray
    u: np.ndarray
    v0: np.ndarray
    acc: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    nominal: np.ndarray
    total_time: float


@attrs.frozen
class Trajectory:
    """A trajectory sampled at ``rate`` Hz: ``t`` ``(n,)``, ``pos`` and ``vel`` ``(n, 3)`` (mm, mm/s)."""

    t: np.ndarray
    pos: np.ndarray
    vel: np.ndarray
    rate: float


def junction_speeds(u_prev: np.ndarray, u_next: np.ndarray, acceleration: float, jd: float) -> np.ndarray:
    """Marlin's junction-deviation speed limit between consecutive unit directions (``(n, 3)`` each)."""
    cos_theta = -np.einsum("ij,ij->i", u_prev, u_next)  # 1 = reversal, -1 = straight on
    cos_theta = np.clip(cos_theta, -1.0, 1.0)
    sin_half = np.sqrt(0.5 * (1.0 - cos_theta))
    with np.errstate(divide="ignore", invalid="ignore"):
        v2 = acceleration * jd * sin_half / (1.0 - sin_half)
    v2 = np.where(cos_theta > 0.999999, 0.0, v2)
    v2 = np.where(cos_theta < -0.999999, np.inf, v2)
    return np.sqrt(v2)  # type: ignore[no-any-return]


def _backward_limit(cap2: np.ndarray, d2a: np.ndarray, window: int) -> np.ndarray:
    """Largest squared entry speed of each block from which the next ``window`` blocks can stop.

    ``cap2[k]``: squared junction limit at the entry of block ``k`` (``k = 0..n``, ``cap2[n] = 0``);
    ``d2a[k] = 2 a d_k``. ``window`` 0 means the whole path (a reverse min-scan).
    """
    n = d2a.shape[0]
    if window <= 0 or window >= n:
        s = np.concatenate([np.cumsum(d2a[::-1])[::-1], [0.0]])  # distance-to-end terms, s[n] = 0
        # w2[k] = min_{j >= k} (cap2[j] + s[k] - s[j])
        return np.minimum.accumulate((cap2 - s)[::-1])[::-1] + s  # type: ignore[no-any-return]
    w2 = np.minimum(cap2[:n], d2a)  # one block: stop at its own end
    for _ in range(window - 1):
        nxt = np.concatenate([w2[1:], [0.0]])
        w2 = np.minimum(cap2[:n], nxt + d2a)
    return np.concatenate([w2, [0.0]])  # type: ignore[no-any-return]


def plan(path: Toolpath, config: PlannerConfig | None = None) -> Plan:
    """Plan every move of ``path`` (moves that feed filament only become dwells of ``|E| / F``)."""
    cfg = config or PlannerConfig()
    a = cfg.acceleration
    delta = path.end - path.start
    dist = np.linalg.norm(delta, axis=1)
    moving = dist > 1e-9
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(moving[:, None], delta / np.where(moving, dist, 1.0)[:, None], 0.0)
    nominal = np.where(moving, np.minimum(path.feed, cfg.max_speed), 0.0)
    n = len(path)
    # junction limits at the entry of each block (cap[0] = 0: start from rest; cap[n] = 0: stop at the end)
    cap = np.zeros(n + 1)
    if n > 1:
        j = junction_speeds(u[:-1], u[1:], a, cfg.junction_deviation)
        j = np.minimum(j, np.minimum(nominal[:-1], nominal[1:]))
        j = np.where(moving[:-1] & moving[1:], j, 0.0)  # a dwell (or retraction) stops the head
        cap[1:n] = j
    cap2 = cap**2
    d2a = 2.0 * a * dist
    window = cfg.lookahead
    # the exit of block k-1 was fixed when k-1 started, with k..k+window-2 in view
    if window == 1:  # a queue of one block: every block stops at its end
        back2 = np.zeros(n + 1)
    else:
        back2 = _backward_limit(cap2, d2a, window - 1 if window > 1 else 0)
    limit2 = np.minimum(cap2, back2)
    # forward pass: v2[k] = min(limit2[k], v2[k-1] + 2 a d_{k-1}) as a min-scan
    s = np.concatenate([[0.0], np.cumsum(d2a)])
    v2 = np.minimum.accumulate(limit2 - s) + s
    v2 = np.maximum(v2, 0.0)
    v = np.sqrt(v2)
    v_in, v_out = v[:-1], v[1:]
    # trapezoids
    peak = np.minimum(nominal, np.sqrt(np.maximum((d2a + v_in**2 + v_out**2) / 2.0, 0.0)))
    peak = np.maximum(peak, np.maximum(v_in, v_out))
    d_acc = np.where(moving, (peak**2 - v_in**2) / (2 * a), 0.0)
    d_dec = np.where(moving, (peak**2 - v_out**2) / (2 * a), 0.0)
    d_cru = np.maximum(dist - d_acc - d_dec, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_acc = np.where(moving, (peak - v_in) / a, 0.0)
        t_dec = np.where(moving, (peak - v_out) / a, 0.0)
        t_cru = np.where(moving & (peak > 0), d_cru / np.where(peak > 0, peak, 1.0), 0.0)
    dwell = np.where(moving, 0.0, np.abs(path.e_delta) / np.maximum(path.feed, 1e-9))
    t_cru = t_cru + dwell
    durations = np.column_stack([t_acc, t_cru, t_dec]).reshape(-1)
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    p0 = np.repeat(path.start, 3, axis=0)
    p0[1::3] += u * d_acc[:, None]
    p0[2::3] += u * (d_acc + d_cru)[:, None]
    v0 = np.column_stack([v_in, peak, peak]).reshape(-1)
    acc = np.column_stack([np.full(n, a), np.zeros(n), np.full(n, -a)]).reshape(-1)
    acc = np.where(np.repeat(moving, 3), acc, 0.0)
    return Plan(
        t0=starts,
        duration=durations,
        p0=p0,
        u=np.repeat(u, 3, axis=0),
        v0=np.where(np.repeat(moving, 3), v0, 0.0),
        acc=acc,
        entry=v_in,
        exit=v_out,
        nominal=nominal,
        total_time=float(starts[-1] + durations[-1]) if n else 0.0,
    )


def sample(p: Plan, rate: float, *, t: np.ndarray | None = None) -> Trajectory:
    """The reference position and velocity at ``rate`` Hz from t = 0 to the end (or at times ``t``)."""
    if t is None:
        t = np.arange(int(np.ceil(p.total_time * rate - 1e-9)) + 1) / rate
    if p.t0.shape[0] == 0:
        zeros = np.zeros((t.shape[0], 3))
        return Trajectory(t, zeros, zeros.copy(), rate)
    idx = np.searchsorted(p.t0, t, side="right") - 1
    idx = np.clip(idx, 0, p.t0.shape[0] - 1)
    tau = np.minimum(t - p.t0[idx], p.duration[idx])
    s = p.v0[idx] * tau + 0.5 * p.acc[idx] * tau**2
    speed = p.v0[idx] + p.acc[idx] * tau
    past_end = t >= p.total_time
    speed = np.where(past_end, 0.0, speed)
    pos = p.p0[idx] + p.u[idx] * s[:, None]
    vel = p.u[idx] * speed[:, None]
    return Trajectory(t, pos, vel, rate)
