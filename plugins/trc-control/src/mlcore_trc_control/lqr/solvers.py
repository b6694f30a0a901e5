"""Finite-horizon optimal control of linear systems, vectorised over a batch of problems.

Every problem ``i`` starts at ``x0[i]`` and tracks a fixed target ``r[i]`` under the cost of
:meth:`LinearSystem.cost`. Targets generally have non-zero velocity, so they are *not*
equilibria and the regulator shortcut ``u = -K (x - r)`` is not optimal; the solvers here are:

- :func:`riccati_tracking` — the backward Riccati recursion **with the affine terms** that a
  non-equilibrium target introduces (value ``V_k(x) = x'P_k x + 2 p_k'x + c_k``). ``P_k`` and the
  gains are shared by the batch, only ``p_k``/``c_k`` depend on the target.
- :func:`direct_least_squares` — the same cost condensed over the stacked control vector
  ``U`` as one linear least-squares problem ``min ||M U - d||²`` (an independent check).
- :func:`box_constrained_lqr` — where ``|u| <= control_limit`` binds, the exact optimum of the
  same cost under the box (a bounded linear least-squares problem solved by
  ``scipy.optimize.lsq_linear``), not the clipped Riccati solution.
- :func:`terminal_constrained_optimum` — the default expert: the minimiser of the stated cost
  ``J`` subject to ``x_N = r`` and ``|u| <= control_limit``, an exact convex QP. The equality-only
  KKT system is solved in closed form for the whole batch (one factorisation); problems whose
  solution leaves the box are solved by Clarabel (interior point, through ``qpsolvers``).
- :func:`min_energy` — the minimum-energy controls that reach the target *exactly*
  (``min sum u'Ru  s.t.  x_N = r``, closed form); kept as an option (it ignores ``Q`` and
  costs ~80 % more than the optimum on the default problem).

:func:`solve_expert` picks and runs the expert for a data set.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import numpy as np

from mlcore.errors import ConfigError
from mlcore_trc_control.lqr.systems import LinearSystem

log = logging.getLogger(__name__)

__all__ = [
    "EXPERTS",
    "ExpertSolution",
    "box_constrained_lqr",
    "condensed",
    "direct_least_squares",
    "lqr_controls",
    "min_energy",
    "quadratic_cost",
    "riccati_tracking",
    "rollout",
    "solve_expert",
    "success_rate",
    "terminal_constrained_optimum",
]

#: Expert choices: ``optimal`` (default) = minimiser of ``J`` with ``x_N = r`` and the box;
#: ``auto`` = box-constrained LQR if it reaches the success bar, else ``optimal``; ``lqr`` = the
#: box-constrained LQR optimum (soft terminal cost only); ``lqr_unconstrained`` = plain LQR (no box);
#: ``min_energy`` = minimum control energy with ``x_N = r`` (ignores ``Q``).
EXPERTS = ("optimal", "auto", "lqr", "lqr_unconstrained", "min_energy")


def rollout(system: LinearSystem, x0: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """States ``(M, N+1, n)``; see :meth:`LinearSystem.rollout`."""
    return system.rollout(x0, controls)


def quadratic_cost(system: LinearSystem, x0: np.ndarray, controls: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The stated tracking cost ``J`` of ``controls`` from ``x0`` towards ``targets``, shape ``(M,)``."""
    return system.cost(system.rollout(x0, controls), controls, targets)


def success_rate(terminal_errors: np.ndarray, threshold: float = 0.1) -> float:
    """Fraction of problems whose terminal error ``||x_N - r||`` is below ``threshold``."""
    return float(np.mean(np.asarray(terminal_errors) < threshold))


@attrs.define
class RiccatiSolution:
    """Result of :func:`riccati_tracking`: ``u_k = -K[k] x_k - kff[:, k]``.

    Attributes:
        K: feedback gains ``(N, m, n)``, shared by the batch.
        kff: feed-forward terms ``(M, N, m)`` (one per target).
        P0, p0, c0: value function at ``k = 0``: ``V_0(x) = x'P0 x + 2 p0'x + c0`` (``p0 (M, n)``, ``c0 (M,)``).
    """

    K: np.ndarray
    kff: np.ndarray
    P0: np.ndarray
    p0: np.ndarray
    c0: np.ndarray

    def optimal_cost(self, x0: np.ndarray) -> np.ndarray:
        """``V_0(x0)``: the optimal cost of each problem, ``(M,)``."""
        return np.einsum("mi,ij,mj->m", x0, self.P0, x0) + 2.0 * np.einsum("mi,mi->m", self.p0, x0) + self.c0


def riccati_tracking(system: LinearSystem, targets: np.ndarray) -> RiccatiSolution:
    """Backward Riccati recursion for constant-target tracking, with the affine terms.

    With ``V_{k+1}(x) = x'P x + 2 p'x + c``, ``H = R + B'PB``, ``G = B'PA``, ``h = B'p``::

        u_k  = -H⁻¹ (G x + h)                 = -K_k x - kff_k
        P_k  = Q + A'PA - G'H⁻¹G
        p_k  = -Q r + A'p - G'H⁻¹h
        c_k  = r'Q r + c - h'H⁻¹h
    starting from ``P_N = Qf``, ``p_N = -Qf r``, ``c_N = r'Qf r``.
    """
    a, b, q, r_w, qf = system.A, system.B, system.Q, system.R, system.Qf
    targets = np.asarray(targets, dtype=np.float64)
    steps = system.num_steps
    p_mat = qf.copy()
    p_vec = -targets @ qf.T
    c = np.einsum("mi,ij,mj->m", targets, qf, targets)
    rqr = np.einsum("mi,ij,mj->m", targets, q, targets)
    gains = np.empty((steps, system.m, system.n))
    feed = np.empty((targets.shape[0], steps, system.m))
    for k in reversed(range(steps)):
        h_mat = r_w + b.T @ p_mat @ b
        g_mat = b.T @ p_mat @ a
        h_vec = p_vec @ b  # (M, m) = (B'p)'
        gain = np.linalg.solve(h_mat, g_mat)  # H⁻¹G
        ff = np.linalg.solve(h_mat, h_vec.T).T  # (H⁻¹h)'
        gains[k] = gain
        feed[:, k] = ff
        p_mat = q + a.T @ p_mat @ a - g_mat.T @ gain
        p_mat = 0.5 * (p_mat + p_mat.T)
        p_vec = -targets @ q.T + p_vec @ a - ff @ g_mat
        c = rqr + c - np.einsum("mi,mi->m", h_vec, ff)
    return RiccatiSolution(K=gains, kff=feed, P0=p_mat, p0=p_vec, c0=c)


def lqr_controls(system: LinearSystem, x0: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unconstrained optimal controls ``(M, N, m)`` and costs ``(M,)`` from the affine Riccati recursion."""
    sol = riccati_tracking(system, targets)
    x = np.asarray(x0, dtype=np.float64).copy()
    controls = np.empty((x.shape[0], system.num_steps, system.m))
    for k in range(system.num_steps):
        u = -x @ sol.K[k].T - sol.kff[:, k]
        controls[:, k] = u
        x = x @ system.A.T + u @ system.B.T
    return controls, sol.optimal_cost(np.asarray(x0, dtype=np.float64))


def _sqrt_psd(mat: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (works for singular ``Q``)."""
    w, v = np.linalg.eigh(mat)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


@attrs.define
class Condensed:
    """The cost condensed over ``U = [u_0; ...; u_{N-1}]``: ``J = ||M U - d||² + e_0'Q e_0``.

    ``d`` depends on the problem and is built by :meth:`rhs`; ``phi (N n, n)`` and ``gamma (N n, N m)``
    map ``x0`` and ``U`` to the stacked states ``x_1..x_N``.
    """

    phi: np.ndarray
    gamma: np.ndarray
    weight_sqrt: np.ndarray  # (N n, N n) block-diagonal sqrt(Q), ..., sqrt(Qf)
    matrix: np.ndarray  # M = [W^½ Γ; R̄^½]

    def rhs(self, x0: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``d (M_problems, rows)`` with ``d = [W^½ (R - Φ x0); 0]``."""
        n = x0.shape[1]
        big_n = self.phi.shape[0] // n
        ref = np.tile(targets, (1, big_n))
        top = (ref - x0 @ self.phi.T) @ self.weight_sqrt.T
        zeros = np.zeros((x0.shape[0], self.matrix.shape[0] - top.shape[1]))
        return np.concatenate([top, zeros], axis=1)


def condensed(system: LinearSystem) -> Condensed:
    """Build the condensed least-squares form of the tracking cost of ``system``."""
    a, b = system.A, system.B
    n, m, steps = system.n, system.m, system.num_steps
    powers = [np.eye(n)]
    for _ in range(steps):
        powers.append(a @ powers[-1])
    phi = np.concatenate([powers[k + 1] for k in range(steps)], axis=0)
    gamma = np.zeros((steps * n, steps * m))
    for k in range(steps):  # x_{k+1} = ... + sum_{j<=k} A^{k-j} B u_j
        for j in range(k + 1):
            gamma[k * n : (k + 1) * n, j * m : (j + 1) * m] = powers[k - j] @ b
    q_half, qf_half, r_half = _sqrt_psd(system.Q), _sqrt_psd(system.Qf), _sqrt_psd(system.R)
    w_half = np.zeros((steps * n, steps * n))
    for k in range(steps):
        w_half[k * n : (k + 1) * n, k * n : (k + 1) * n] = qf_half if k == steps - 1 else q_half
    r_bar = np.kron(np.eye(steps), r_half)
    matrix = np.concatenate([w_half @ gamma, r_bar], axis=0)
    return Condensed(phi=phi, gamma=gamma, weight_sqrt=w_half, matrix=matrix)


def _initial_cost(system: LinearSystem, x0: np.ndarray, targets: np.ndarray) -> np.ndarray:
    e0 = x0 - targets
    return np.einsum("mi,ij,mj->m", e0, system.Q, e0)


def direct_least_squares(system: LinearSystem, x0: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unconstrained optimum by one least-squares solve over the stacked controls: ``(controls, costs)``."""
    x0 = np.asarray(x0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    cond = condensed(system)
    d = cond.rhs(x0, targets)
    sol, *_ = np.linalg.lstsq(cond.matrix, d.T, rcond=None)
    u = sol.T
    costs = np.sum((u @ cond.matrix.T - d) ** 2, axis=1) + _initial_cost(system, x0, targets)
    return u.reshape(x0.shape[0], system.num_steps, system.m), costs


def box_constrained_lqr(
    system: LinearSystem, x0: np.ndarray, targets: np.ndarray, *, tol: float = 1e-12
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact optimum of the tracking cost under ``|u_i| <= control_limit``.

    The unconstrained optimum (affine Riccati) is kept wherever it already satisfies the box —
    the problem is convex, so it is then also the constrained optimum. For the others, the
    condensed cost is a bounded linear least-squares problem solved exactly with
    ``scipy.optimize.lsq_linear`` (bounded-variable least squares).

    Returns ``(controls (M, N, m), costs (M,), binds (M,) bool)``.
    """
    from scipy.optimize import lsq_linear

    x0 = np.asarray(x0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    controls, costs = lqr_controls(system, x0, targets)
    limit = system.control_limit
    binds = np.zeros(x0.shape[0], dtype=bool)
    if limit <= 0:
        return controls, costs, binds
    binds = np.abs(controls).max(axis=(1, 2)) > limit * (1 + 1e-12)
    if not binds.any():
        return controls, costs, binds
    cond = condensed(system)
    idx = np.flatnonzero(binds)
    d = cond.rhs(x0[idx], targets[idx])
    e0 = _initial_cost(system, x0[idx], targets[idx])
    for row, i in enumerate(idx):
        res = lsq_linear(cond.matrix, d[row], bounds=(-limit, limit), method="bvls", tol=tol)
        u = np.clip(res.x, -limit, limit)
        controls[i] = u.reshape(system.num_steps, system.m)
        costs[i] = float(np.sum((cond.matrix @ u - d[row]) ** 2) + e0[row])
    return controls, costs, binds


def _terminal_map(system: LinearSystem) -> tuple[np.ndarray, np.ndarray]:
    """``(A^N, G)`` with ``x_N = A^N x0 + G U``."""
    cond = condensed(system)
    n = system.n
    return cond.phi[-n:], cond.gamma[-n:]


def min_energy(system: LinearSystem, x0: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-energy controls that reach the target exactly: ``min sum u'Ru  s.t.  x_N = r``.

    Closed form ``U = R̄⁻¹G'(G R̄⁻¹ G')⁻¹ (r - A^N x0)``; where ``|u| <= control_limit`` is violated
    the same problem with the box is solved per problem (SciPy SLSQP). Returns ``(controls, binds)``.
    Raises :class:`ConfigError` if the system cannot reach every target in ``num_steps`` steps.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    a_n, g = _terminal_map(system)
    r_bar_inv = np.kron(np.eye(system.num_steps), np.linalg.inv(system.R))
    gram = g @ r_bar_inv @ g.T
    if np.linalg.cond(gram) > 1e12:
        raise ConfigError(
            f"data.expert='min_energy': system {system.name!r} is not controllable in {system.num_steps} steps "
            f"(reachability Gramian condition number {np.linalg.cond(gram):.2g}); use data.expert='lqr'"
        )
    d = targets - x0 @ a_n.T
    u = (np.linalg.solve(gram, d.T).T @ g) @ r_bar_inv.T
    binds = np.zeros(x0.shape[0], dtype=bool)
    limit = system.control_limit
    if limit > 0:
        binds = np.abs(u).max(axis=1) > limit * (1 + 1e-12)
        if binds.any():
            u[binds] = _min_energy_box(system, g, r_bar_inv, d[binds], limit)
    return u.reshape(x0.shape[0], system.num_steps, system.m), binds


def _min_energy_box(
    system: LinearSystem, g: np.ndarray, r_bar_inv: np.ndarray, d: np.ndarray, limit: float
) -> np.ndarray:
    from scipy.optimize import minimize

    r_bar = np.linalg.inv(r_bar_inv)
    dim = g.shape[1]
    out = np.empty((d.shape[0], dim))
    infeasible = 0
    for i, rhs in enumerate(d):
        start = np.clip(np.linalg.lstsq(g, rhs, rcond=None)[0], -limit, limit)
        res = minimize(
            lambda v: float(v @ r_bar @ v),
            start,
            jac=lambda v: 2.0 * r_bar @ v,
            method="SLSQP",
            bounds=[(-limit, limit)] * dim,
            constraints=[{"type": "eq", "fun": lambda v, rhs=rhs: g @ v - rhs, "jac": lambda v: g}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        if not res.success or np.abs(g @ res.x - rhs).max() > 1e-6:
            infeasible += 1
        out[i] = np.clip(res.x, -limit, limit)
    if infeasible:
        raise ConfigError(
            f"data.expert='min_energy': {infeasible} of {len(d)} targets cannot be reached exactly within "
            f"control_limit={limit}; raise data.control_limit, lengthen data.time_horizon or shrink the ranges"
        )
    return out


@attrs.define
class ConstrainedOptimum:
    """Result of :func:`terminal_constrained_optimum` for ``M`` problems.

    Attributes:
        controls: ``(M, N, m)``; costs: the stated cost ``J`` ``(M,)``.
        binds: ``(M,)`` whether the box is active at the optimum.
        eq_multipliers: ``(M, n)`` multipliers ``y`` of ``x_N = r``.
        box_multipliers: ``(M, N*m)`` multipliers ``z`` of the box (``> 0`` at the upper bound,
            ``< 0`` at the lower, 0 inside), so that ``grad J(U) + G'y + z = 0`` with
            ``x_N = A^N x_0 + G U``.
        solver: ``(M,)`` which path solved each problem: ``"closed_form"``, ``"clarabel+polish"``
            or ``"clarabel"``.
    """

    controls: np.ndarray
    costs: np.ndarray
    binds: np.ndarray
    eq_multipliers: np.ndarray
    box_multipliers: np.ndarray
    solver: np.ndarray


def _qp_matrices(system: LinearSystem) -> tuple[Condensed, np.ndarray, np.ndarray, np.ndarray]:
    """``(condensed, P, G, A^N)`` for ``J(U) = U'(P/2)U + q'U + c`` and ``x_N = A^N x0 + G U``."""
    cond = condensed(system)
    hessian = 2.0 * cond.matrix.T @ cond.matrix
    n = system.n
    return cond, 0.5 * (hessian + hessian.T), cond.gamma[-n:], cond.phi[-n:]


def _kkt_solve(
    hessian: np.ndarray, g: np.ndarray, lin: np.ndarray, rhs: np.ndarray, fixed: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Equality-constrained minimiser with the variables ``fixed`` held at ``values``: ``(U, y)``."""
    free = ~fixed
    u = np.where(fixed, values, 0.0)
    hff = hessian[np.ix_(free, free)]
    gf = g[:, free]
    k = gf.shape[0]
    kkt = np.block([[hff, gf.T], [gf, np.zeros((k, k))]])
    top = -lin[free] - hessian[np.ix_(free, fixed)] @ u[fixed]
    bottom = rhs - g[:, fixed] @ u[fixed]
    sol = np.linalg.lstsq(kkt, np.concatenate([top, bottom]), rcond=None)[0]
    u[free] = sol[: free.sum()]
    return u, sol[free.sum() :]


def terminal_constrained_optimum(
    system: LinearSystem, x0: np.ndarray, targets: np.ndarray, *, tol: float = 1e-9
) -> ConstrainedOptimum:
    """The exact minimiser of the stated cost ``J`` subject to ``x_N = r`` and ``|u| <= control_limit``.

    ``J`` is a convex quadratic of the stacked controls ``U`` (``R > 0``), so this is a strictly
    convex QP. All problems are first solved with the equality constraint only, in closed form
    (one KKT factorisation shared by the batch). Where that leaves the box, the QP is solved by
    Clarabel; its active set is then *polished*: the KKT system is re-solved exactly with the
    active controls at their bounds, and kept if the multipliers have the right signs and the
    free controls stay inside the box (else Clarabel's solution is kept).

    Raises :class:`ConfigError` if a target cannot be reached within the box in ``N`` steps.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    cond, hessian, g, a_n = _qp_matrices(system)
    d = cond.rhs(x0, targets)
    lin = -2.0 * d @ cond.matrix  # (M, dim): q of each problem
    rhs = targets - x0 @ a_n.T  # (M, n): G U = rhs
    dim, n = hessian.shape[0], system.n
    kkt = np.block([[hessian, g.T], [g, np.zeros((n, n))]])
    if np.linalg.matrix_rank(g) < n:
        raise ConfigError(
            f"data.expert='optimal': system {system.name!r} cannot reach every target in {system.num_steps} steps "
            "(the terminal map is rank deficient); use data.expert='lqr'"
        )
    sol = np.linalg.solve(kkt, np.concatenate([-lin, rhs], axis=1).T).T
    u, y = sol[:, :dim], sol[:, dim:]
    z = np.zeros_like(u)
    solver = np.full(x0.shape[0], "closed_form", dtype=object)
    limit = system.control_limit
    binds = np.zeros(x0.shape[0], dtype=bool)
    if limit > 0:
        binds = np.abs(u).max(axis=1) > limit * (1 + 1e-12)
        if binds.any():
            infeasible = []
            qp = _ClarabelBoxQP(hessian, g, limit, tol)
            for i in np.flatnonzero(binds):
                result = qp.solve(lin[i], rhs[i])
                if result is None:
                    infeasible.append(i)
                    continue
                u[i], y[i], z[i], solver[i] = _polish(hessian, lin[i], g, rhs[i], limit, *result)
            if infeasible:
                raise ConfigError(
                    f"data.expert='optimal': {len(infeasible)} of {len(binds)} targets cannot be reached exactly "
                    f"within control_limit={limit}; raise data.control_limit, lengthen data.time_horizon or "
                    "shrink the ranges (or use data.expert='lqr')"
                )
            binds = np.abs(u).max(axis=1) >= limit * (1 - 1e-9)
    controls = u.reshape(x0.shape[0], system.num_steps, system.m)
    costs = system.cost(system.rollout(x0, controls), controls, targets)
    return ConstrainedOptimum(controls, costs, binds, y, z, solver)


class _ClarabelBoxQP:
    """``min U'(P/2)U + q'U  s.t.  G U = rhs, |U| <= limit`` by Clarabel, one solver reused for a
    batch (only ``q`` and ``rhs`` change: Clarabel's data update skips the symbolic factorisation)."""

    def __init__(self, hessian: np.ndarray, g: np.ndarray, limit: float, tol: float) -> None:
        import clarabel
        from scipy import sparse

        self.dim, self.n, self.limit = hessian.shape[0], g.shape[0], limit
        eye = np.eye(self.dim)
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        settings.presolve_enable = False  # keeps the data updatable
        settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = tol
        self._args = (
            sparse.csc_matrix(np.triu(hessian)),
            sparse.csc_matrix(np.vstack([g, eye, -eye])),
            [clarabel.ZeroConeT(self.n), clarabel.NonnegativeConeT(2 * self.dim)],
            settings,
        )
        self._solver: Any = None

    def _b(self, rhs: np.ndarray) -> np.ndarray:
        return np.concatenate([rhs, np.full(2 * self.dim, self.limit)])

    def solve(self, lin: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(U, y, z)`` (equality and box multipliers), or ``None`` if the problem is infeasible."""
        import clarabel

        p_mat, a_mat, cones, settings = self._args
        if self._solver is None:
            self._solver = clarabel.DefaultSolver(p_mat, lin, a_mat, self._b(rhs), cones, settings)
        else:
            self._solver.update(q=lin, b=self._b(rhs))
        result = self._solver.solve()
        if str(result.status) not in ("Solved", "AlmostSolved"):
            return None
        dual = np.asarray(result.z)
        # Clarabel: P x + q + A' z = 0 with z_eq free, z_box >= 0 -> box multiplier = z_upper - z_lower
        n, dim = self.n, self.dim
        return np.asarray(result.x), dual[:n], dual[n : n + dim] - dual[n + dim :]


def _polish(
    hessian: np.ndarray,
    lin: np.ndarray,
    g: np.ndarray,
    rhs: np.ndarray,
    limit: float,
    u: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Re-solve exactly on the interior-point solution's active set; keep it if KKT holds.

    Controls within a relative ``1e-4``, ``1e-6`` or ``1e-8`` of the bound are tried as the active
    set, loosest first (an interior-point method leaves weakly active bounds slightly inside).
    """
    for rel in (1e-4, 1e-6, 1e-8):
        active = np.abs(u) >= limit * (1 - rel)
        if not active.any():
            break
        up, yp = _kkt_solve(hessian, g, lin, rhs, active, np.sign(u) * limit)
        zp = np.where(active, -(hessian @ up + lin + g.T @ yp), 0.0)
        signs_ok = np.all(zp * np.sign(up) >= -1e-9 * max(1.0, np.abs(zp).max()))
        inside = np.all(np.abs(up) <= limit * (1 + 1e-12))
        feasible = np.allclose(g @ up, rhs, atol=1e-9 * max(1.0, np.abs(rhs).max()))
        if signs_ok and inside and feasible:
            return np.clip(up, -limit, limit), yp, zp, "clarabel+polish"
    return np.clip(u, -limit, limit), y, z, "clarabel"


@attrs.define
class ExpertSolution:
    """Expert labels for a batch of problems.

    Attributes:
        expert: ``"optimal"``, ``"lqr"``, ``"lqr_unconstrained"`` or ``"min_energy"`` (see :data:`EXPERTS`).
        controls ``(M, N, m)``, states ``(M, N+1, n)``, costs ``(M,)`` (the stated cost ``J``),
        terminal_errors ``(M,)`` = ``||x_N - r||``, binds ``(M,)``: where the control limit is active.
    """

    expert: str
    controls: np.ndarray
    states: np.ndarray
    costs: np.ndarray
    terminal_errors: np.ndarray
    binds: np.ndarray

    def summary(self, threshold: float = 0.1) -> dict[str, Any]:
        """Headline figures: success rate, mean terminal error and cost, how often the limit binds."""
        return {
            "expert": self.expert,
            "success_rate": success_rate(self.terminal_errors, threshold),
            "mean_terminal_error": float(self.terminal_errors.mean()),
            "mean_cost": float(self.costs.mean()),
            "control_limit_binds": int(self.binds.sum()),
            "control_limit_bind_fraction": float(self.binds.mean()),
        }


def _solution(
    system: LinearSystem, expert: str, x0: np.ndarray, targets: np.ndarray, controls: np.ndarray, binds: np.ndarray
) -> ExpertSolution:
    states = system.rollout(x0, controls)
    costs = system.cost(states, controls, targets)
    errors = np.linalg.norm(states[:, -1] - targets, axis=1)
    return ExpertSolution(expert, controls, states, costs, errors, binds)


def solve_lqr(system: LinearSystem, x0: np.ndarray, targets: np.ndarray) -> ExpertSolution:
    """The exact (box-constrained where needed) optimum of the stated cost, as an :class:`ExpertSolution`."""
    controls, _, binds = box_constrained_lqr(system, x0, targets)
    return _solution(system, "lqr", x0, targets, controls, binds)


def solve_min_energy(system: LinearSystem, x0: np.ndarray, targets: np.ndarray) -> ExpertSolution:
    """The minimum-energy exact-terminal controls, as an :class:`ExpertSolution`."""
    controls, binds = min_energy(system, x0, targets)
    return _solution(system, "min_energy", x0, targets, controls, binds)


def solve_optimal(system: LinearSystem, x0: np.ndarray, targets: np.ndarray) -> ExpertSolution:
    """The minimiser of ``J`` with ``x_N = r`` and the box (:func:`terminal_constrained_optimum`)."""
    opt = terminal_constrained_optimum(system, x0, targets)
    return _solution(system, "optimal", x0, targets, opt.controls, opt.binds)


def solve_lqr_unconstrained(system: LinearSystem, x0: np.ndarray, targets: np.ndarray) -> ExpertSolution:
    """Plain LQR (affine Riccati, no box: may exceed ``control_limit``), as an :class:`ExpertSolution`."""
    controls, _ = lqr_controls(system, x0, targets)
    limit = system.control_limit
    binds = np.abs(controls).max(axis=(1, 2)) > limit if limit > 0 else np.zeros(len(controls), dtype=bool)
    return _solution(system, "lqr_unconstrained", x0, targets, controls, binds)


def solve_expert(
    system: LinearSystem,
    x0: np.ndarray,
    targets: np.ndarray,
    expert: str = "optimal",
    *,
    success_threshold: float = 0.1,
    required_success: float = 0.999,
) -> tuple[ExpertSolution, ExpertSolution]:
    """Label a batch: returns ``(expert_solution, lqr_solution)``.

    The box-constrained LQR optimum of the stated cost (soft terminal cost only) is always
    computed (evaluators compare against it). ``"optimal"`` (default) labels with the minimiser
    of the same cost under ``x_N = r`` and the box; ``"auto"`` uses the LQR optimum when its
    success rate reaches ``required_success``, else ``"optimal"``; ``"lqr"``,
    ``"lqr_unconstrained"`` and ``"min_energy"`` force those experts.
    """
    if expert not in EXPERTS:
        raise ConfigError(f"data.expert={expert!r} is not allowed (allowed: {', '.join(EXPERTS)})")
    x0 = np.asarray(x0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    lqr = solve_lqr(system, x0, targets)
    if expert == "lqr":
        return lqr, lqr
    if expert == "lqr_unconstrained":
        return solve_lqr_unconstrained(system, x0, targets), lqr
    if expert == "min_energy":
        return solve_min_energy(system, x0, targets), lqr
    lqr_success = success_rate(lqr.terminal_errors, success_threshold)
    if expert == "auto" and lqr_success >= required_success:
        return lqr, lqr
    if expert == "auto":
        log.info(
            "LQR optimum of the stated cost reaches only %.1f%% success (< %.1f%%): using the terminal-constrained "
            "optimum",
            100 * lqr_success,
            100 * required_success,
        )
    return solve_optimal(system, x0, targets), lqr
