"""The quadrotor simulator: rigid-body physics in weather, RK4, a waypoint controller (numpy, vectorised).

State (12): position ``x y z`` (m, z up), velocity ``vx vy vz`` (m/s, world frame), attitude
``roll pitch yaw`` (rad, ZYX Euler), body rates ``p q r`` (rad/s).
Action (4): commanded total thrust (N) and body torques ``tx ty tz`` (N·m).
Weather (6, per sample): wind ``wx wy wz`` (m/s: the episode's mean wind plus 3-D
Ornstein–Uhlenbeck gusts), air density ``rho`` (kg/m³), ``temperature`` (°C) and ``rain``
(0..1 rain rate).

How the weather acts (the causal model):

- aerodynamic drag on the velocity relative to the air, ``F = -½ rho CdA |v - w| (v - w)``;
- rotor thrust scales with density, ``T = T_cmd · rho / rho0`` (the controller assumes ``rho0``);
- rain water on the airframe adds mass, ``m = m0 + rain_mass · rain``;
- temperature acts only through the density (``rho = p / (R T)``), so given ``rho`` it carries
  no further information: a built-in negative control for the weather ablation.

Integration: the controller acts at the sample rate (20 Hz by default) with its action held
between samples; each sample interval is integrated with ``substeps`` classical RK4 steps
(5 → 100 Hz). The gusts evolve per RK4 step (exact OU discretisation), so the weather recorded
at a sample time does not fully determine the next interval: even the true model with the
weather known has a small error floor.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

__all__ = [
    "ACTION_NAMES",
    "STATE_GROUPS",
    "STATE_NAMES",
    "WEATHER_FACTORS",
    "WEATHER_NAMES",
    "EpisodeWeather",
    "QuadrotorParams",
    "WaypointController",
    "derivatives",
    "rk4_step",
    "sample_weather",
    "simulate_episodes",
]

STATE_NAMES = ("x", "y", "z", "vx", "vy", "vz", "roll", "pitch", "yaw", "p", "q", "r")
ACTION_NAMES = ("thrust", "tx", "ty", "tz")
WEATHER_NAMES = ("wind_x", "wind_y", "wind_z", "rho", "temperature", "rain")
#: Named slices of the state (per-group errors).
STATE_GROUPS: dict[str, slice] = {
    "position": slice(0, 3),
    "velocity": slice(3, 6),
    "attitude": slice(6, 9),
    "rates": slice(9, 12),
}
#: The causal factors, as column indices of the weather vector.
WEATHER_FACTORS: dict[str, list[int]] = {"wind": [0, 1, 2], "density": [3], "temperature": [4], "rain": [5]}

GAS_CONSTANT = 287.05  # J/(kg K), dry air


@attrs.frozen
class QuadrotorParams:
    """Physical constants of the vehicle (SI units)."""

    mass: float = 1.0
    gravity: float = 9.81
    inertia: tuple[float, float, float] = (0.012, 0.012, 0.022)
    drag_area: float = 0.04  # Cd·A (m²)
    rot_drag: float = 0.004  # rotational damping (N·m·s)
    rho0: float = 1.225  # density the rotors (and the controller) are calibrated for
    rain_mass: float = 0.25  # kg of water at rain rate 1
    max_thrust: float = 25.0
    max_torque: float = 0.4


@attrs.frozen
class EpisodeWeather:
    """One episode's weather, sampled once (the gusts evolve within it)."""

    wind_mean: tuple[float, float, float]
    gust_sigma: float
    gust_tau: float
    temperature: float
    pressure: float
    rain: float

    @property
    def rho(self) -> float:
        """Air density from the ideal gas law."""
        return self.pressure / (GAS_CONSTANT * (self.temperature + 273.15))

    def record(self) -> dict[str, Any]:
        """Plain values for the manifest."""
        return {**attrs.asdict(self), "rho": self.rho}


def sample_weather(rng: np.random.Generator, *, max_wind: float = 6.0, max_gust: float = 1.5) -> EpisodeWeather:
    """Draw one episode's weather: wind speed/direction, gust strength and time constant, T, p, rain."""
    speed = rng.uniform(0.0, max_wind)
    heading = rng.uniform(0.0, 2 * np.pi)
    vertical = rng.normal(0.0, 0.1 * max_wind)
    rain = 0.0 if rng.random() < 0.4 else float(rng.uniform(0.0, 1.0))
    return EpisodeWeather(
        wind_mean=(float(speed * np.cos(heading)), float(speed * np.sin(heading)), float(vertical)),
        gust_sigma=float(rng.uniform(0.0, max_gust)),
        gust_tau=float(rng.uniform(0.5, 3.0)),
        temperature=float(rng.uniform(-10.0, 35.0)),
        pressure=float(rng.uniform(80_000.0, 103_000.0)),
        rain=rain,
    )


def _rotation_z_axis(att: np.ndarray) -> np.ndarray:
    """The body z axis in world coordinates (third column of R = Rz(yaw) Ry(pitch) Rx(roll))."""
    phi, theta, psi = att[..., 0], att[..., 1], att[..., 2]
    cf, sf, ct, st, cp, sp = np.cos(phi), np.sin(phi), np.cos(theta), np.sin(theta), np.cos(psi), np.sin(psi)
    return np.stack([cp * st * cf + sp * sf, sp * st * cf - cp * sf, ct * cf], axis=-1)


def derivatives(
    state: np.ndarray, action: np.ndarray, wind: np.ndarray, rho: np.ndarray, rain: np.ndarray, params: QuadrotorParams
) -> np.ndarray:
    """``d state / dt`` for states ``(..., 12)``, actions ``(..., 4)``, wind ``(..., 3)``, rho and rain ``(...)``."""
    vel, att, rates = state[..., 3:6], state[..., 6:9], state[..., 9:12]
    mass = params.mass + params.rain_mass * rain
    thrust = np.clip(action[..., 0], 0.0, params.max_thrust) * rho / params.rho0
    rel = vel - wind
    drag = -0.5 * rho[..., None] * params.drag_area * np.linalg.norm(rel, axis=-1, keepdims=True) * rel
    acc = (thrust[..., None] * _rotation_z_axis(att) + drag) / mass[..., None]
    acc[..., 2] -= params.gravity
    phi, theta = att[..., 0], att[..., 1]
    p, q, r = rates[..., 0], rates[..., 1], rates[..., 2]
    sf, cf, ct, tt = np.sin(phi), np.cos(phi), np.cos(theta), np.tan(theta)
    att_dot = np.stack([p + (q * sf + r * cf) * tt, q * cf - r * sf, (q * sf + r * cf) / ct], axis=-1)
    inertia = np.asarray(params.inertia)
    torque = np.clip(action[..., 1:4], -params.max_torque, params.max_torque)
    gyro = np.cross(rates, rates * inertia)
    rates_dot = (torque - gyro - params.rot_drag * rates) / inertia
    return np.concatenate([vel, acc, att_dot, rates_dot], axis=-1)


def rk4_step(
    state: np.ndarray,
    action: np.ndarray,
    wind: np.ndarray,
    rho: np.ndarray,
    rain: np.ndarray,
    h: np.ndarray | float,
    params: QuadrotorParams,
) -> np.ndarray:
    """One classical Runge–Kutta 4 step of length ``h`` (scalar or ``(...)``) with action and weather held."""
    hh = np.asarray(h, dtype=np.float64)[..., None] if np.ndim(h) else h

    def f(x: np.ndarray) -> np.ndarray:
        return derivatives(x, action, wind, rho, rain, params)

    k1 = f(state)
    k2 = f(state + 0.5 * hh * k1)
    k3 = f(state + 0.5 * hh * k2)
    k4 = f(state + hh * k3)
    return state + hh / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


@attrs.frozen
class WaypointController:
    """Cascaded PD navigation controller: position → desired tilt and thrust → body torques.

    It knows the nominal mass and density only (no wind, no rain), so weather shows in the flight.
    """

    params: QuadrotorParams = attrs.field(factory=QuadrotorParams)
    kp_pos: float = 1.2
    kd_pos: float = 1.8
    max_speed: float = 4.0
    max_tilt: float = 0.45
    kp_att: float = 30.0
    kd_att: float = 8.0
    kp_yaw: float = 4.0

    def __call__(self, state: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Actions ``(..., 4)`` steering states ``(..., 12)`` towards waypoints ``(..., 3)``."""
        prm = self.params
        pos, vel, att, rates = state[..., 0:3], state[..., 3:6], state[..., 6:9], state[..., 9:12]
        v_des = self.kp_pos / self.kd_pos * (target - pos)
        speed = np.linalg.norm(v_des, axis=-1, keepdims=True)
        v_des = v_des * np.minimum(1.0, self.max_speed / np.maximum(speed, 1e-9))
        acc = self.kd_pos * (v_des - vel)
        force = prm.mass * (acc + np.array([0.0, 0.0, prm.gravity]))
        force[..., 2] = np.maximum(force[..., 2], 0.2 * prm.mass * prm.gravity)
        yaw = att[..., 2]
        fx, fy, fz = force[..., 0], force[..., 1], force[..., 2]
        cy, sy = np.cos(yaw), np.sin(yaw)
        pitch_des = np.clip(np.arctan2(fx * cy + fy * sy, fz), -self.max_tilt, self.max_tilt)
        roll_des = np.clip(np.arctan2(fx * sy - fy * cy, fz / np.cos(pitch_des)), -self.max_tilt, self.max_tilt)
        thrust = np.linalg.norm(force, axis=-1)
        att_err = np.stack([roll_des - att[..., 0], pitch_des - att[..., 1], -att[..., 2]], axis=-1)
        gains = np.array([self.kp_att, self.kp_att, self.kp_yaw])
        inertia = np.asarray(prm.inertia)
        torque = inertia * (gains * att_err - self.kd_att * rates)
        action = np.concatenate([thrust[..., None], torque], axis=-1)
        action[..., 0] = np.clip(action[..., 0], 0.0, prm.max_thrust)
        action[..., 1:] = np.clip(action[..., 1:], -prm.max_torque, prm.max_torque)
        return action


def _waypoint(rng: np.random.Generator, n: int, arena: float) -> np.ndarray:
    return np.stack([rng.uniform(-arena, arena, n), rng.uniform(-arena, arena, n), rng.uniform(2.0, 8.0, n)], axis=-1)


def simulate_episodes(
    weathers: list[EpisodeWeather],
    *,
    steps: int,
    dt: float,
    substeps: int,
    rng: np.random.Generator,
    time_jitter: float = 0.0,
    params: QuadrotorParams | None = None,
    arena: float = 10.0,
    reach: float = 1.0,
) -> dict[str, np.ndarray]:
    """Fly one episode per weather, all at once, for ``steps`` sample intervals.

    Returns ``states (E, steps+1, 12)``, ``actions (E, steps, 4)``, ``weather (E, steps+1, 6)``
    (the weather at each sample time), ``times (E, steps+1)`` and ``waypoints (E, steps, 3)``.
    With ``time_jitter > 0`` each interval lasts ``dt * (1 + U(-jitter, jitter))``: irregular samples.
    """
    prm = params or QuadrotorParams()
    ctrl = WaypointController(prm)
    n = len(weathers)
    wind_mean = np.array([w.wind_mean for w in weathers])
    sigma = np.array([w.gust_sigma for w in weathers])[:, None]
    tau = np.array([w.gust_tau for w in weathers])[:, None]
    rho = np.array([w.rho for w in weathers])
    temperature = np.array([w.temperature for w in weathers])
    rain = np.array([w.rain for w in weathers])

    state = np.zeros((n, 12))
    state[:, 0:3] = _waypoint(rng, n, arena)
    state[:, 8] = rng.uniform(-0.3, 0.3, n)
    target = _waypoint(rng, n, arena)
    gust = sigma * rng.standard_normal((n, 3))

    states = np.empty((n, steps + 1, 12))
    actions = np.empty((n, steps, 4))
    weather = np.empty((n, steps + 1, 6))
    times = np.zeros((n, steps + 1))
    waypoints = np.empty((n, steps, 3))

    def record_weather(k: int) -> None:
        weather[:, k, 0:3] = wind_mean + gust
        weather[:, k, 3] = rho
        weather[:, k, 4] = temperature
        weather[:, k, 5] = rain

    states[:, 0] = state
    record_weather(0)
    for k in range(steps):
        reached = np.linalg.norm(state[:, 0:3] - target, axis=-1) < reach
        if reached.any():
            target[reached] = _waypoint(rng, int(reached.sum()), arena)
        action = ctrl(state, target)
        interval = dt * (1.0 + rng.uniform(-time_jitter, time_jitter, n)) if time_jitter > 0 else np.full(n, dt)
        h = interval / substeps
        decay = np.exp(-h[:, None] / tau)
        for _ in range(substeps):
            state = rk4_step(state, action, wind_mean + gust, rho, rain, h, prm)
            gust = gust * decay + sigma * np.sqrt(1.0 - decay**2) * rng.standard_normal((n, 3))
        actions[:, k] = action
        waypoints[:, k] = target
        times[:, k + 1] = times[:, k] + interval
        states[:, k + 1] = state
        record_weather(k + 1)
    return {"states": states, "actions": actions, "weather": weather, "times": times, "waypoints": waypoints}


def true_model_rollout(
    state: np.ndarray,
    actions: np.ndarray,
    weather: np.ndarray,
    intervals: np.ndarray,
    *,
    substeps: int,
    params: QuadrotorParams | None = None,
) -> np.ndarray:
    """The simulator's own prediction: ``H`` intervals from ``state (N, 12)`` with the true parameters.

    ``actions (N, H, 4)``, ``weather (N, H, 6)`` (the recorded weather at each interval's start,
    held over it, as a model sees it) and ``intervals (N, H)`` seconds. Returns ``(N, H, 12)``.
    """
    prm = params or QuadrotorParams()
    out = np.empty((state.shape[0], actions.shape[1], 12))
    x = state.astype(np.float64)
    for k in range(actions.shape[1]):
        w = weather[:, k]
        h = intervals[:, k] / substeps
        for _ in range(substeps):
            x = rk4_step(x, actions[:, k], w[:, 0:3], w[:, 3], w[:, 5], h, prm)
        out[:, k] = x
    return out
