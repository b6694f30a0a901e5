"""Discrete-time linear systems ``x[k+1] = A x[k] + B u[k]`` with quadratic costs.

Built-in systems (continuous-time models discretised with an exact zero-order hold,
``scipy.linalg.expm`` of the block matrix ``[[Ac, Bc], [0, 0]] * dt``):

- ``double_integrator``: state ``[position, velocity]``, control = acceleration. Its ZOH is
  ``A = [[1, dt], [0, 1]]``, ``B = [[dt²/2], [dt]]``.
- ``planar_double_integrator``: state ``[px, py, vx, vy]``, control ``[ax, ay]``.
- ``cartpole``: a cart-pole linearised about the upright equilibrium, state
  ``[x, x_dot, theta, theta_dot]``, control = horizontal force on the cart.
- ``custom``: any ``(A, B)`` (discrete, or continuous with ``continuous=True``) with ``(Q, R, Qf)``.

Example::

    from mlcore_trc_control.lqr import build_system

    sys = build_system("double_integrator", num_steps=15, time_horizon=5.0)
    states = sys.rollout(x0, controls)            # (M, N+1, n)
    cost = sys.cost(states, controls, targets)    # (M,)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from mlcore.errors import ConfigError

__all__ = ["SYSTEMS", "LinearSystem", "SystemTemplate", "build_system", "zoh_discretise"]


def zoh_discretise(ac: np.ndarray, bc: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact zero-order-hold discretisation of ``x' = Ac x + Bc u`` over one step ``dt``."""
    from scipy.linalg import expm

    n, m = bc.shape
    block = np.zeros((n + m, n + m))
    block[:n, :n] = ac
    block[:n, n:] = bc
    phi = expm(block * dt)
    return phi[:n, :n].copy(), phi[:n, n:].copy()


@attrs.frozen(eq=False)
class LinearSystem:
    """A discrete linear system with a finite-horizon quadratic tracking cost.

    The cost of a control sequence ``u[0..N-1]`` from ``x[0]`` towards a fixed target ``r`` is::

        J = sum_{k=0}^{N-1} (x[k]-r)' Q (x[k]-r) + u[k]' R u[k]  +  (x[N]-r)' Qf (x[N]-r)

    Attributes:
        name: system name (``double_integrator``, ...).
        A, B: discrete dynamics ``(n, n)`` and ``(n, m)``.
        Q, R, Qf: stage state, control and terminal weights (symmetric, ``Q, Qf >= 0``, ``R > 0``).
        dt: step length in seconds; ``num_steps`` steps make the horizon.
        control_limit: box limit ``|u_i| <= control_limit``; ``0`` means unbounded.
        state_names, control_names: labels for reports.
        ac, bc: the continuous-time model when there is one (built-in systems, ``custom`` with
            ``continuous=True``), so :meth:`with_horizon` can re-discretise for another horizon.
    """

    name: str
    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    Qf: np.ndarray
    dt: float
    num_steps: int
    control_limit: float = 0.0
    state_names: tuple[str, ...] = ()
    control_names: tuple[str, ...] = ()
    ac: np.ndarray | None = None
    bc: np.ndarray | None = None

    @property
    def n(self) -> int:
        """State dimension."""
        return int(self.A.shape[0])

    def with_horizon(self, time_horizon: float) -> LinearSystem:
        """The same system and cost over another horizon (``N`` steps of ``time_horizon / N``, exact ZOH).

        Needs the continuous-time model: a ``custom`` system given in discrete time has none
        (:class:`ConfigError`).
        """
        if abs(time_horizon - self.time_horizon) <= 1e-12 * max(1.0, time_horizon):
            return self
        if self.ac is None or self.bc is None:
            raise ConfigError(
                f"system {self.name!r} is given in discrete time: it has no other horizons "
                "(give its continuous-time a, b with continuous=true to train over horizons)"
            )
        dt = float(time_horizon) / self.num_steps
        a, b = zoh_discretise(self.ac, self.bc, dt)
        return attrs.evolve(self, A=a, B=b, dt=dt)

    @property
    def m(self) -> int:
        """Control dimension."""
        return int(self.B.shape[1])

    @property
    def time_horizon(self) -> float:
        """``dt * num_steps`` in seconds."""
        return float(self.dt * self.num_steps)

    def rollout(self, x0: np.ndarray, controls: np.ndarray) -> np.ndarray:
        """States ``(M, N+1, n)`` from ``x0 (M, n)`` under ``controls (M, N, m)`` (open loop, exact)."""
        x0 = np.asarray(x0, dtype=np.float64)
        controls = np.asarray(controls, dtype=np.float64)
        steps = controls.shape[1]
        states = np.empty((x0.shape[0], steps + 1, self.n))
        states[:, 0] = x0
        for k in range(steps):
            states[:, k + 1] = states[:, k] @ self.A.T + controls[:, k] @ self.B.T
        return states

    def cost(self, states: np.ndarray, controls: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The quadratic tracking cost ``J`` (see the class docstring) of each problem, shape ``(M,)``."""
        err = states - targets[:, None, :]
        stage = np.einsum("mki,ij,mkj->m", err[:, :-1], self.Q, err[:, :-1])
        effort = np.einsum("mki,ij,mkj->m", controls, self.R, controls)
        terminal = np.einsum("mi,ij,mj->m", err[:, -1], self.Qf, err[:, -1])
        return stage + effort + terminal

    def to_dict(self) -> dict[str, Any]:
        """The problem definition as JSON-ready data (stored in every dataset's metadata)."""
        return {
            "name": self.name,
            "A": self.A.tolist(),
            "B": self.B.tolist(),
            "Q": self.Q.tolist(),
            "R": self.R.tolist(),
            "Qf": self.Qf.tolist(),
            "dt": self.dt,
            "num_steps": self.num_steps,
            "time_horizon": self.time_horizon,
            "control_limit": self.control_limit,
            "state_names": list(self.state_names),
            "control_names": list(self.control_names),
            **({} if self.ac is None or self.bc is None else {"ac": self.ac.tolist(), "bc": self.bc.tolist()}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearSystem:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            A=np.asarray(data["A"], dtype=np.float64),
            B=np.asarray(data["B"], dtype=np.float64),
            Q=np.asarray(data["Q"], dtype=np.float64),
            R=np.asarray(data["R"], dtype=np.float64),
            Qf=np.asarray(data["Qf"], dtype=np.float64),
            dt=float(data["dt"]),
            num_steps=int(data["num_steps"]),
            control_limit=float(data.get("control_limit", 0.0)),
            state_names=tuple(data.get("state_names", ())),
            control_names=tuple(data.get("control_names", ())),
            ac=np.asarray(data["ac"], dtype=np.float64) if "ac" in data else None,
            bc=np.asarray(data["bc"], dtype=np.float64) if "bc" in data else None,
        )

    def same_problem(self, other: LinearSystem, *, atol: float = 1e-9) -> bool:
        """Whether two systems define the same control problem (dynamics, costs, horizon, limit)."""
        return (
            self.num_steps == other.num_steps
            and abs(self.control_limit - other.control_limit) <= atol
            and all(
                a.shape == b.shape and np.allclose(a, b, atol=atol)
                for a, b in zip(
                    (self.A, self.B, self.Q, self.R, self.Qf), (other.A, other.B, other.Q, other.R, other.Qf)
                )
            )
        )


@attrs.frozen
class SystemTemplate:
    """A built-in continuous-time system and its default problem settings."""

    ac: np.ndarray
    bc: np.ndarray
    q: tuple[float, ...]
    r: tuple[float, ...]
    state_names: tuple[str, ...]
    control_names: tuple[str, ...]
    initial_range: tuple[float, ...]  # half-widths of the uniform initial-state box
    target_range: tuple[float, ...]  # half-widths of the uniform target box
    time_horizon: float = 5.0
    control_limit: float = 4.0
    description: str = ""


def _double_integrator() -> SystemTemplate:
    return SystemTemplate(
        ac=np.array([[0.0, 1.0], [0.0, 0.0]]),
        bc=np.array([[0.0], [1.0]]),
        q=(10.0, 5.0),
        r=(0.1,),
        state_names=("position", "velocity"),
        control_names=("acceleration",),
        initial_range=(2.0, 2.0),
        target_range=(2.0, 2.0),
        description="1-D double integrator: position, velocity; control = acceleration",
    )


def _planar_double_integrator() -> SystemTemplate:
    ac = np.zeros((4, 4))
    ac[0, 2] = ac[1, 3] = 1.0
    bc = np.zeros((4, 2))
    bc[2, 0] = bc[3, 1] = 1.0
    return SystemTemplate(
        ac=ac,
        bc=bc,
        q=(10.0, 10.0, 5.0, 5.0),
        r=(0.1, 0.1),
        state_names=("px", "py", "vx", "vy"),
        control_names=("ax", "ay"),
        initial_range=(2.0, 2.0, 2.0, 2.0),
        target_range=(2.0, 2.0, 2.0, 2.0),
        description="2-D point mass: positions and velocities; control = accelerations",
    )


def _cartpole(
    cart_mass: float = 1.0, pole_mass: float = 0.1, pole_length: float = 1.0, g: float = 9.81
) -> SystemTemplate:
    # Point-mass pole on a massless rod, linearised about upright (theta = 0):
    #   x'' = (u - m g theta) / M,   theta'' = ((M + m) g theta - u) / (M l)
    big_m, small_m, length = cart_mass, pole_mass, pole_length
    ac = np.array(
        [
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, -small_m * g / big_m, 0.0],
            [0.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, (big_m + small_m) * g / (big_m * length), 0.0],
        ]
    )
    bc = np.array([[0.0], [1.0 / big_m], [0.0], [-1.0 / (big_m * length)]])
    return SystemTemplate(
        ac=ac,
        bc=bc,
        q=(10.0, 1.0, 10.0, 1.0),
        r=(0.1,),
        state_names=("cart_position", "cart_velocity", "pole_angle", "pole_angular_velocity"),
        control_names=("force",),
        initial_range=(1.0, 0.5, 0.1, 0.1),
        target_range=(1.0, 0.0, 0.0, 0.0),
        time_horizon=2.0,
        control_limit=20.0,
        description="cart-pole linearised about upright: move the cart, keep the pole up",
    )


#: Built-in systems by name (``custom`` takes A and B from the config instead).
SYSTEMS: dict[str, Any] = {
    "double_integrator": _double_integrator,
    "planar_double_integrator": _planar_double_integrator,
    "cartpole": _cartpole,
}


def _matrix(value: Any, size: int, field: str, *, diagonal_ok: bool = True) -> np.ndarray:
    """A ``(size, size)`` matrix from a diagonal list or a nested list; ConfigError naming ``field``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{field}: expected a list of numbers or a matrix (list of rows), got {value!r}") from None
    if arr.ndim == 0 and diagonal_ok:
        arr = np.full(size, float(arr))
    if arr.ndim == 1 and diagonal_ok:
        if arr.shape[0] != size:
            raise ConfigError(f"{field}: expected {size} diagonal values, got {arr.shape[0]}")
        arr = np.diag(arr)
    if arr.shape != (size, size):
        raise ConfigError(f"{field}: expected a {size}x{size} matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{field}: contains NaN or inf")
    return arr


def _check_weights(q: np.ndarray, r: np.ndarray, qf: np.ndarray, where: str) -> None:
    for name, mat, strict in (("q", q, False), ("r", r, True), ("qf", qf, False)):
        if not np.allclose(mat, mat.T, atol=1e-10):
            raise ConfigError(f"{where}{name}: must be symmetric")
        low = float(np.linalg.eigvalsh(mat).min())
        if (strict and low <= 0) or (not strict and low < -1e-10):
            need = "positive definite" if strict else "positive semi-definite"
            raise ConfigError(f"{where}{name}: must be {need} (smallest eigenvalue {low:.3g})")


def build_system(
    name: str = "double_integrator",
    *,
    num_steps: int = 15,
    time_horizon: float | None = None,
    q: Sequence[Any] | None = None,
    r: Sequence[Any] | None = None,
    qf: Sequence[Any] | None = None,
    terminal_weight: float = 20.0,
    control_limit: float | None = None,
    a: Sequence[Any] | None = None,
    b: Sequence[Any] | None = None,
    continuous: bool = False,
    where: str = "",
) -> LinearSystem:
    """Build a :class:`LinearSystem` by name, with optional cost/horizon overrides.

    ``None`` takes the system's default. ``Qf = qf`` if given, else ``terminal_weight * Q``.
    For ``name="custom"``, ``a`` and ``b`` are required: discrete matrices, or continuous ones
    (ZOH-discretised over ``dt``) with ``continuous=True``. ``where`` prefixes config keys in errors.
    """
    if num_steps < 1:
        raise ConfigError(f"{where}num_steps={num_steps} must be >= 1")
    if name == "custom":
        if a is None or b is None:
            raise ConfigError(f"{where}system='custom' needs both {where}a and {where}b (lists of matrix rows)")
        a_mat = np.atleast_2d(np.asarray(a, dtype=np.float64))
        b_mat = np.asarray(b, dtype=np.float64)
        if b_mat.ndim == 1:
            b_mat = b_mat[:, None]
        if a_mat.shape[0] != a_mat.shape[1] or b_mat.shape[0] != a_mat.shape[0]:
            raise ConfigError(f"{where}a/b: shapes {a_mat.shape} and {b_mat.shape} do not fit (need (n,n) and (n,m))")
        n, m = b_mat.shape
        if q is None:
            raise ConfigError(f"{where}q is required for system='custom'")
        horizon = float(time_horizon if time_horizon is not None else num_steps)
        dt = horizon / num_steps
        cont: tuple[np.ndarray, np.ndarray] | None = None
        if continuous:
            cont = (a_mat, b_mat)
            a_mat, b_mat = zoh_discretise(a_mat, b_mat, dt)
        template = SystemTemplate(
            ac=a_mat,
            bc=b_mat,
            q=tuple(np.ones(n)),
            r=tuple(np.ones(m)),
            state_names=tuple(f"x{i}" for i in range(n)),
            control_names=tuple(f"u{i}" for i in range(m)),
            initial_range=(1.0,) * n,
            target_range=(1.0,) * n,
            time_horizon=horizon,
            control_limit=0.0,
        )
    else:
        if name not in SYSTEMS:
            raise ConfigError(f"{where}system={name!r} is not allowed (allowed: {', '.join([*SYSTEMS, 'custom'])})")
        template = SYSTEMS[name]()
        horizon = float(time_horizon if time_horizon is not None else template.time_horizon)
        dt = horizon / num_steps
        a_mat, b_mat = zoh_discretise(template.ac, template.bc, dt)
        cont = (np.asarray(template.ac, dtype=np.float64), np.asarray(template.bc, dtype=np.float64))
        n, m = template.bc.shape
    if not (np.isfinite(horizon) and horizon > 0):
        raise ConfigError(f"{where}time_horizon={horizon} must be > 0")
    q_mat = _matrix(template.q if q is None else q, n, f"{where}q")
    r_mat = _matrix(template.r if r is None else r, m, f"{where}r")
    qf_mat = _matrix(qf, n, f"{where}qf") if qf is not None else terminal_weight * q_mat
    _check_weights(q_mat, r_mat, qf_mat, where)
    limit = float(template.control_limit if control_limit is None else control_limit)
    if limit < 0 or not np.isfinite(limit):
        raise ConfigError(f"{where}control_limit={limit} must be >= 0 (0 = unbounded)")
    return LinearSystem(
        name=name,
        A=a_mat,
        B=b_mat,
        Q=q_mat,
        R=r_mat,
        Qf=qf_mat,
        dt=dt,
        num_steps=int(num_steps),
        control_limit=limit,
        state_names=template.state_names,
        control_names=template.control_names,
        ac=None if cont is None else cont[0],
        bc=None if cont is None else cont[1],
    )


def default_ranges(name: str, n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The built-in system's (initial, target) half-widths; ``(1, ..., 1)`` for custom systems."""
    if name in SYSTEMS:
        t = SYSTEMS[name]()
        return tuple(t.initial_range), tuple(t.target_range)
    return (1.0,) * n, (1.0,) * n
