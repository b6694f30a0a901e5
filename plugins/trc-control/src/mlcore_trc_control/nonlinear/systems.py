"""Nonlinear control-affine systems with RK4 discretisation and the quadratic tracking cost.

Built-in systems (problem settings after the public TinyRecursiveControl reference,
``configs/problems/{pendulum,vanderpol}.yaml`` and ``src/environments/{pendulum,vanderpol}.py``):

- ``pendulum``: state ``[theta, theta_dot]`` with ``theta`` measured from **upright**, control =
  torque, ``I theta'' = m g l sin(theta) - b theta' + u`` (``m = l = 1``, ``g = 9.81``,
  ``b = 0.1``, ``I = m l²``), ``Q = diag(100, 10)``, ``R = 0.01``, ``Qf = 100 Q``, initial states
  ``theta ∈ [-π, π]``, ``theta_dot ∈ [-1, 1]``, target upright ``[0, 0]``: swing-up from anywhere
  (hanging included) and stabilisation. Two deliberate departures from the reference: (1) it
  writes ``- m g l sin(theta)``, which makes ``theta = 0`` the *hanging* (stable) equilibrium
  although its docstrings call it upright; here the sign follows the stated task (upright is
  unstable); (2) its ``|u| <= 2`` makes the swing-up from hanging unreachable in 5 s (in an early
  trial IPOPT met ``x_N = r`` in 6 of 40 sampled problems), so the default limit is ``|u| <= 4``
  (1000 of 1000 generated problems reachable; still below ``m g l = 9.81``, so hanging starts need
  pumping swings).
- ``vanderpol``: state ``[x, v]``, ``x' = v``, ``v' = mu (1 - x²) v - x + u`` (``mu = 1``),
  ``|u| <= 2``, ``Q = diag(10, 5)``, ``R = 0.1``, ``Qf = 20 Q``, initial states in ``[-2, 2]²``,
  target the origin.

- ``rocket``: 3-DOF point-mass rocket landing after the reference's ``rocket_landing`` problem
  (``configs/problems/rocket_landing.yaml``, ``src/environments/rocket_landing.py``): state
  ``[x, y, z, vx, vy, vz, mass]`` (m, m/s, kg), control the thrust vector ``[Tx, Ty, Tz]`` (N),
  ``r' = v``, ``v' = T / mass + (0, 0, -g)``, ``mass' = -|T| / (Isp g0)``, with the reference's Mars
  gravity ``g = 3.71``, ``Isp = 200.7 s``, ``g0 = 9.81``, per-component thrust box ``|T_i| <= 15000``,
  ``Q = diag(10, 10, 15, 5, 5, 8, 0)``, ``R = 0.001 I``, ``Qf = 50 Q``, 50 RK4 steps of 0.5 s
  (25 s; the reference: 49 steps of 0.5 s). The mass is a *free* state: it has no target, no weight
  and no terminal constraint, and the terminal error / success count position and velocity only
  (the reference zeroes the mass error in its costs too). Target: the origin at rest.
  Deviations, all deliberate: (1) the reference samples initial states from a box of kilometres
  (``x in [-2500, 9000]`` m, ``z`` up to 6 km, speeds up to 100 m/s) with the same 24.5 s horizon,
  which the thrust limit cannot land (it trained on an external data set of per-trajectory
  horizons of 11-256 s instead); here the box is a terminal descent that the expert lands in every
  sampled problem: ``x, y in ±150`` m, ``z in 300-500`` m, ``vx, vy in ±10``, ``vz in -30..-10`` m/s,
  mass 1700-2300 kg; (2) its extra fuel term ``mass_weight * (m_0 - m_N)`` is dropped (the cost stays
  quadratic; at these scales it is < 0.1 % of ``R |T|²``); (3) ``|T|`` in the mass flow is smoothed
  to ``sqrt(|T|² + 1 N²)`` so the dynamics are differentiable at zero thrust (NumPy, torch and CasADi
  alike); (4) no clamps on altitude or mass inside the step (the reference clips ``z >= 0`` and
  ``mass >= 100``, which are not differentiable); the expert does not need them on this box.

Pendulum and Van der Pol use a 5 s horizon as in the reference; the reference takes 100 steps of 0.05 s (explicit
Euler for the pendulum, RK4 for Van der Pol), the default here is 50 RK4 steps of 0.1 s (one RK4
step per control interval, zero-order hold on ``u``) to keep the expert's solves affordable;
``num_steps=100`` restores the reference's grid.

The right-hand sides are written once against a small ``ops`` namespace (``sin``, ``sqrt``), so NumPy,
PyTorch and CasADi evaluate the very same expression.

Example::

    from mlcore_trc_control.nonlinear import build_nonlinear_system

    sys = build_nonlinear_system("pendulum")
    states = sys.rollout(x0, controls)                 # (M, N+1, n), RK4
    cost = sys.cost(states, controls, targets)         # (M,)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from mlcore.errors import ConfigError

__all__ = [
    "NONLINEAR_SYSTEMS",
    "NonlinearSystem",
    "NonlinearTemplate",
    "build_nonlinear_system",
    "is_nonlinear",
    "rk4_step",
    "system_from_dict",
]


# ---------------------------------------------------------------------- right-hand sides
def _pendulum_rhs(x: Sequence[Any], u: Sequence[Any], p: dict[str, float], ops: Any) -> list[Any]:
    inertia = p["mass"] * p["length"] ** 2
    theta, omega = x[0], x[1]
    accel = (p["mass"] * p["gravity"] * p["length"] * ops.sin(theta) - p["friction"] * omega + u[0]) / inertia
    return [omega, accel]


def _pendulum_jacobian(x: np.ndarray, u: np.ndarray, p: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    inertia = p["mass"] * p["length"] ** 2
    a = np.array(
        [[0.0, 1.0], [p["mass"] * p["gravity"] * p["length"] * np.cos(x[0]) / inertia, -p["friction"] / inertia]]
    )
    return a, np.array([[0.0], [1.0 / inertia]])


def _vanderpol_rhs(x: Sequence[Any], u: Sequence[Any], p: dict[str, float], ops: Any) -> list[Any]:
    pos, vel = x[0], x[1]
    return [vel, p["mu"] * (1 - pos * pos) * vel - pos + u[0]]


def _vanderpol_jacobian(x: np.ndarray, u: np.ndarray, p: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    mu = p["mu"]
    a = np.array([[0.0, 1.0], [-2 * mu * x[0] * x[1] - 1.0, mu * (1 - x[0] ** 2)]])
    return a, np.array([[0.0], [1.0]])


#: smoothing of ``|T|`` in the rocket's mass flow, ``sqrt(|T|² + eps²)`` (N): differentiable at ``T = 0``
_THRUST_EPS = 1.0


def _rocket_rhs(x: Sequence[Any], u: Sequence[Any], p: dict[str, float], ops: Any) -> list[Any]:
    mass = x[6]
    thrust = ops.sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2] + _THRUST_EPS**2)
    return [
        x[3],
        x[4],
        x[5],
        u[0] / mass,
        u[1] / mass,
        u[2] / mass - p["gravity"],
        -thrust / (p["isp"] * p["g0"]),
    ]


def _rocket_jacobian(x: np.ndarray, u: np.ndarray, p: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    mass = x[6]
    a = np.zeros((7, 7))
    a[0:3, 3:6] = np.eye(3)
    a[3:6, 6] = -u / mass**2
    b = np.zeros((7, 3))
    b[3:6] = np.eye(3) / mass
    b[6] = -u / (np.sqrt(u @ u + _THRUST_EPS**2) * p["isp"] * p["g0"])
    return a, b


def _rocket_trim(x: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """Hover thrust at ``x``: ``(0, 0, mass g)``."""
    return np.array([0.0, 0.0, x[6] * p["gravity"]])


def _positive(name: str) -> Callable[[float], str | None]:
    return lambda v: None if v > 0 else f"{name} must be > 0"


def _non_negative(name: str) -> Callable[[float], str | None]:
    return lambda v: None if v >= 0 else f"{name} must be >= 0"


@attrs.frozen
class NonlinearTemplate:
    """A built-in nonlinear system and its default problem settings (the reference's)."""

    rhs: Callable[..., list[Any]]
    jacobian: Callable[[np.ndarray, np.ndarray, dict[str, float]], tuple[np.ndarray, np.ndarray]]
    params: dict[str, float]
    checks: dict[str, Callable[[float], str | None]]
    q: tuple[float, ...]
    r: tuple[float, ...]
    terminal_weight: float
    state_names: tuple[str, ...]
    control_names: tuple[str, ...]
    initial_range: tuple[float, ...]
    target_range: tuple[float, ...]
    time_horizon: float = 5.0
    num_steps: int = 50
    control_limit: float = 2.0
    description: str = ""
    #: states with no target (no weight, no terminal constraint, not in the terminal error)
    free_states: tuple[int, ...] = ()
    #: centre of the initial-state box (``initial_range`` are half-widths around it); zeros if ``None``
    initial_center: tuple[float, ...] | None = None
    #: the control that holds a state at rest (``trim(x, params)``, e.g. hover thrust); zeros if ``None``
    trim: Callable[[np.ndarray, dict[str, float]], np.ndarray] | None = None
    #: lower bounds on the states (``-inf`` = none) that the expert enforces on every node after ``x_0``
    state_lower: tuple[float, ...] | None = None
    #: ``f(-x, -u) = -f(x, u)`` (and no state bounds): the problem ``(-x_0, -r, T)`` is solved by ``-u``
    odd_symmetric: bool = False


def _pendulum() -> NonlinearTemplate:
    return NonlinearTemplate(
        rhs=_pendulum_rhs,
        jacobian=_pendulum_jacobian,
        params={"mass": 1.0, "length": 1.0, "gravity": 9.81, "friction": 0.1},
        checks={
            "mass": _positive("mass"),
            "length": _positive("length"),
            "gravity": _non_negative("gravity"),
            "friction": _non_negative("friction"),
        },
        q=(100.0, 10.0),
        r=(0.01,),
        terminal_weight=100.0,
        state_names=("theta", "theta_dot"),
        control_names=("torque",),
        initial_range=(float(np.pi), 1.0),
        target_range=(0.0, 0.0),
        control_limit=4.0,
        odd_symmetric=True,
        description="pendulum (theta from upright): swing-up and stabilisation with |torque| <= 4",
    )


def _vanderpol() -> NonlinearTemplate:
    return NonlinearTemplate(
        rhs=_vanderpol_rhs,
        jacobian=_vanderpol_jacobian,
        params={"mu": 1.0},
        checks={"mu": _non_negative("mu")},
        q=(10.0, 5.0),
        r=(0.1,),
        terminal_weight=20.0,
        state_names=("position", "velocity"),
        control_names=("forcing",),
        initial_range=(2.0, 2.0),
        target_range=(0.0, 0.0),
        odd_symmetric=True,
        description="Van der Pol oscillator (mu = 1) driven to the origin with |u| <= 2",
    )


def _rocket() -> NonlinearTemplate:
    return NonlinearTemplate(
        rhs=_rocket_rhs,
        jacobian=_rocket_jacobian,
        params={"gravity": 3.71, "isp": 200.7, "g0": 9.81},
        checks={"gravity": _non_negative("gravity"), "isp": _positive("isp"), "g0": _positive("g0")},
        q=(10.0, 10.0, 15.0, 5.0, 5.0, 8.0, 0.0),
        r=(0.001, 0.001, 0.001),
        terminal_weight=50.0,
        state_names=("x", "y", "z", "vx", "vy", "vz", "mass"),
        control_names=("thrust_x", "thrust_y", "thrust_z"),
        initial_range=(150.0, 150.0, 100.0, 10.0, 10.0, 10.0, 300.0),
        target_range=(0.0,) * 7,
        time_horizon=25.0,
        num_steps=50,
        control_limit=15000.0,
        description="3-DOF rocket landing (Mars gravity, variable mass): land at the origin, |thrust_i| <= 15000 N",
        free_states=(6,),
        initial_center=(0.0, 0.0, 400.0, 0.0, 0.0, -20.0, 2000.0),
        trim=_rocket_trim,
        state_lower=(-np.inf, -np.inf, 0.0, -np.inf, -np.inf, -np.inf, -np.inf),
    )


#: Built-in nonlinear systems by name.
NONLINEAR_SYSTEMS: dict[str, Callable[[], NonlinearTemplate]] = {
    "pendulum": _pendulum,
    "vanderpol": _vanderpol,
    "rocket": _rocket,
}


@functools.cache
def _template(name: str) -> NonlinearTemplate:
    return NONLINEAR_SYSTEMS[name]()


def rk4_step(rhs: Callable[[Any, Any], Any], x: Any, u: Any, dt: Any) -> Any:
    """One classical Runge-Kutta step of ``x' = rhs(x, u)`` with ``u`` held over ``dt``.

    Works for any array type with ``+`` and ``*`` (NumPy, torch, CasADi); ``rhs`` returns the
    same type as ``x``.
    """
    k1 = rhs(x, u)
    k2 = rhs(x + 0.5 * dt * k1, u)
    k3 = rhs(x + 0.5 * dt * k2, u)
    k4 = rhs(x + dt * k3, u)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


@attrs.frozen(eq=False)
class NonlinearSystem:
    """A nonlinear system ``x' = f(x, u)`` discretised by one RK4 step per control interval, with
    the same quadratic tracking cost as :class:`~mlcore_trc_control.lqr.systems.LinearSystem`::

        J = sum_{k<N} (x_k - r)' Q (x_k - r) + u_k' R u_k  +  (x_N - r)' Qf (x_N - r)

    ``dt = time_horizon / num_steps`` is the default step; :meth:`rollout` takes per-problem
    horizons (``dt_i = T_i / N``) for data sets drawn over a range of horizons.
    """

    name: str
    params: dict[str, float]
    Q: np.ndarray
    R: np.ndarray
    Qf: np.ndarray
    dt: float
    num_steps: int
    control_limit: float = 0.0
    state_names: tuple[str, ...] = ()
    control_names: tuple[str, ...] = ()
    kind: str = "nonlinear"
    free_states: tuple[int, ...] = ()

    @property
    def template(self) -> NonlinearTemplate:
        """The built-in definition (right-hand side, Jacobian)."""
        return _template(self.name)

    @property
    def n(self) -> int:
        """State dimension."""
        return int(self.Q.shape[0])

    @property
    def m(self) -> int:
        """Control dimension."""
        return int(self.R.shape[0])

    @property
    def time_horizon(self) -> float:
        """``dt * num_steps`` in seconds."""
        return float(self.dt * self.num_steps)

    @property
    def tracked(self) -> np.ndarray:
        """Indices of the states with a target (all but :attr:`free_states`, e.g. the rocket's mass)."""
        return np.array([i for i in range(self.n) if i not in self.free_states], dtype=np.int64)

    @property
    def initial_center(self) -> np.ndarray:
        """Centre ``(n,)`` of the initial-state box (zeros except for the rocket)."""
        centre = self.template.initial_center
        return np.zeros(self.n) if centre is None else np.asarray(centre, dtype=np.float64)

    @property
    def state_lower(self) -> np.ndarray:
        """Lower state bounds ``(n,)`` the expert enforces (the rocket's ground ``z >= 0``; else ``-inf``)."""
        lower = self.template.state_lower
        return np.full(self.n, -np.inf) if lower is None else np.asarray(lower, dtype=np.float64)

    @property
    def odd_symmetric(self) -> bool:
        """Whether ``f(-x, -u) = -f(x, u)`` (pendulum, Van der Pol): mirrored problems share mirrored optima."""
        return bool(self.template.odd_symmetric)

    def terminal_error(self, final: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``||x_N - r||`` over the tracked states, per problem ``(M,)``."""
        idx = self.tracked
        return np.linalg.norm(np.asarray(final)[:, idx] - np.asarray(targets)[:, idx], axis=1)  # type: ignore[no-any-return]

    def trim_control(self, x: np.ndarray) -> np.ndarray:
        """The control ``(m,)`` that holds ``x`` at rest (hover thrust for the rocket, else zeros)."""
        trim = self.template.trim
        return np.zeros(self.m) if trim is None else np.asarray(trim(np.asarray(x, dtype=np.float64), self.params))

    def rhs(self, x: Any, u: Any, ops: Any = np) -> list[Any]:
        """``f(x, u)`` as a list of components; ``x[i]``, ``u[j]`` may be scalars or arrays."""
        return self.template.rhs(x, u, self.params, ops)

    def derivative(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``f(x, u)`` for batches ``x (M, n)``, ``u (M, m)`` (NumPy)."""
        return np.stack(self.rhs(x.T, u.T), axis=1)

    def step(self, x: np.ndarray, u: np.ndarray, dt: float | np.ndarray) -> np.ndarray:
        """One RK4 step for a batch; ``dt`` a scalar or ``(M,)``."""
        dt_col = np.asarray(dt, dtype=np.float64).reshape(-1, 1) if np.ndim(dt) else float(dt)  # type: ignore[arg-type]
        return rk4_step(self.derivative, x, u, dt_col)  # type: ignore[no-any-return]

    def rollout(self, x0: np.ndarray, controls: np.ndarray, horizons: np.ndarray | None = None) -> np.ndarray:
        """States ``(M, N+1, n)`` from ``x0 (M, n)`` under ``controls (M, N, m)``; ``horizons (M,)``
        in seconds (default: this system's)."""
        x0 = np.asarray(x0, dtype=np.float64)
        controls = np.asarray(controls, dtype=np.float64)
        steps = controls.shape[1]
        dt: float | np.ndarray = self.dt if horizons is None else np.asarray(horizons, dtype=np.float64) / steps
        states = np.empty((x0.shape[0], steps + 1, self.n))
        states[:, 0] = x0
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(steps):
                states[:, k + 1] = self.step(states[:, k], controls[:, k], dt)
        return states

    def cost(self, states: np.ndarray, controls: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The quadratic tracking cost ``J`` of each problem ``(M,)``."""
        err = states - targets[:, None, :]
        stage = np.einsum("mki,ij,mkj->m", err[:, :-1], self.Q, err[:, :-1])
        effort = np.einsum("mki,ij,mkj->m", controls, self.R, controls)
        terminal = np.einsum("mi,ij,mj->m", err[:, -1], self.Qf, err[:, -1])
        return stage + effort + terminal

    def linearise(self, x: np.ndarray, u: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Continuous-time Jacobians ``(df/dx, df/du)`` at ``(x, u)`` (``u`` defaults to zeros)."""
        u = np.zeros(self.m) if u is None else np.asarray(u, dtype=np.float64)
        return self.template.jacobian(np.asarray(x, dtype=np.float64), u, self.params)

    def to_dict(self) -> dict[str, Any]:
        """The problem definition as JSON-ready data (stored in every dataset's metadata)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "params": dict(self.params),
            "Q": self.Q.tolist(),
            "R": self.R.tolist(),
            "Qf": self.Qf.tolist(),
            "dt": self.dt,
            "num_steps": self.num_steps,
            "time_horizon": self.time_horizon,
            "control_limit": self.control_limit,
            "state_names": list(self.state_names),
            "control_names": list(self.control_names),
            "free_states": list(self.free_states),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NonlinearSystem:
        """Inverse of :meth:`to_dict`."""
        if data["name"] not in NONLINEAR_SYSTEMS:
            raise ValueError(f"unknown nonlinear system {data['name']!r}")
        return cls(
            name=str(data["name"]),
            params={k: float(v) for k, v in data["params"].items()},
            Q=np.asarray(data["Q"], dtype=np.float64),
            R=np.asarray(data["R"], dtype=np.float64),
            Qf=np.asarray(data["Qf"], dtype=np.float64),
            dt=float(data["dt"]),
            num_steps=int(data["num_steps"]),
            control_limit=float(data.get("control_limit", 0.0)),
            state_names=tuple(data.get("state_names", ())),
            control_names=tuple(data.get("control_names", ())),
            free_states=tuple(int(i) for i in data.get("free_states", ())),
        )

    def same_problem(self, other: Any, *, atol: float = 1e-9) -> bool:
        """Whether two systems define the same control problem (dynamics, costs, grid, limit)."""
        return (
            isinstance(other, NonlinearSystem)
            and self.name == other.name
            and self.num_steps == other.num_steps
            and tuple(self.free_states) == tuple(other.free_states)
            and abs(self.dt - other.dt) <= atol
            and abs(self.control_limit - other.control_limit) <= atol
            and self.params.keys() == other.params.keys()
            and all(abs(self.params[k] - other.params[k]) <= atol for k in self.params)
            and all(
                np.allclose(a, b, atol=atol) for a, b in zip((self.Q, self.R, self.Qf), (other.Q, other.R, other.Qf))
            )
        )


def is_nonlinear(system: Any) -> bool:
    """Whether ``system`` is a :class:`NonlinearSystem` (else a linear one)."""
    return getattr(system, "kind", "linear") == "nonlinear"


def system_from_dict(data: dict[str, Any]) -> Any:
    """A linear or nonlinear system from its ``to_dict`` form (``kind`` picks which)."""
    if data.get("kind") == "nonlinear":
        return NonlinearSystem.from_dict(data)
    from mlcore_trc_control.lqr.systems import LinearSystem

    return LinearSystem.from_dict(data)


def build_nonlinear_system(
    name: str,
    *,
    num_steps: int | None = None,
    time_horizon: float | None = None,
    q: Sequence[Any] | None = None,
    r: Sequence[Any] | None = None,
    qf: Sequence[Any] | None = None,
    terminal_weight: float | None = None,
    control_limit: float | None = None,
    params: dict[str, Any] | None = None,
    where: str = "",
) -> NonlinearSystem:
    """Build a built-in :class:`NonlinearSystem` with optional overrides (``None`` = the system's
    default); one-line :class:`ConfigError` naming ``{where}<field>`` on bad values."""
    from mlcore_trc_control.lqr.systems import _check_weights, _matrix

    if name not in NONLINEAR_SYSTEMS:
        raise ConfigError(f"{where}system={name!r} is not a nonlinear system (allowed: {', '.join(NONLINEAR_SYSTEMS)})")
    t = NONLINEAR_SYSTEMS[name]()
    steps = int(t.num_steps if num_steps is None else num_steps)
    if steps < 1:
        raise ConfigError(f"{where}num_steps={steps} must be >= 1")
    horizon = float(t.time_horizon if time_horizon is None else time_horizon)
    if not (np.isfinite(horizon) and horizon > 0):
        raise ConfigError(f"{where}time_horizon={horizon} must be > 0")
    values = dict(t.params)
    for key, value in (params or {}).items():
        if key not in values:
            raise ConfigError(
                f"{where}params.{key}: unknown parameter of system {name!r} (allowed: {', '.join(values)})"
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}params.{key}={value!r} must be a number") from None
        problem = t.checks[key](number) if np.isfinite(number) else f"{key} must be finite"
        if problem:
            raise ConfigError(f"{where}params.{key}={value!r}: {problem} (system {name!r})")
        values[key] = number
    n, m = len(t.state_names), len(t.control_names)
    q_mat = _matrix(t.q if q is None else q, n, f"{where}q")
    r_mat = _matrix(t.r if r is None else r, m, f"{where}r")
    weight = t.terminal_weight if terminal_weight is None else float(terminal_weight)
    qf_mat = _matrix(qf, n, f"{where}qf") if qf is not None else weight * q_mat
    _check_weights(q_mat, r_mat, qf_mat, where)
    limit = float(t.control_limit if control_limit is None else control_limit)
    if limit < 0 or not np.isfinite(limit):
        raise ConfigError(f"{where}control_limit={limit} must be >= 0 (0 = unbounded)")
    return NonlinearSystem(
        name=name,
        params=values,
        Q=q_mat,
        R=r_mat,
        Qf=qf_mat,
        dt=horizon / steps,
        num_steps=steps,
        control_limit=limit,
        state_names=t.state_names,
        control_names=t.control_names,
        free_states=t.free_states,
    )
