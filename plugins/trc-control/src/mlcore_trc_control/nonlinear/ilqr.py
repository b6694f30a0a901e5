"""iLQR (iterative LQR) on a nonlinear system: the classical local trajectory optimiser as a baseline.

:func:`ilqr` minimises the stated cost ``J`` (soft terminal cost ``Qf``, no terminal constraint)
of every problem ``(x_0, r, T)`` over the control sequence, with the dynamics the exact RK4 step
of :mod:`mlcore_trc_control.nonlinear.systems` (the expression shared by NumPy, torch and CasADi):

1. Jacobians ``A_k = d x_{k+1} / d x_k``, ``B_k = d x_{k+1} / d u_k`` of the discrete RK4 step
   along the current trajectory, by CasADi's algorithmic differentiation of the same step the
   expert uses (exact, evaluated for the whole batch in one mapped call);
2. the backward Riccati pass of the local quadratic model (Levenberg-Marquardt regularisation
   ``mu I`` on ``Q_uu``, per problem); the box ``|u| <= limit`` as in control-limited DDP
   (Tassa, Mansard & Todorov 2014) in a simplified form: controls whose step would leave the box
   are clamped and get no feedback, the free ones are re-solved given the clamped ones;
3. a forward pass ``u = clip(u + alpha k + K (x_new - x))`` with a backtracking line search on
   ``alpha`` (accept the first decrease of ``J``), per problem.

It starts from a warm start (by default the closed-loop LQR on the linearisation, the expert's
first guess too) and stops per problem when ``J`` improves by less than ``tol`` (relative).

Written here rather than taken from a library: the maintained Python DDP/iLQR implementations
need another heavy stack for one baseline — ``crocoddyl`` (C++/pinocchio, action models with
hand-written derivatives) or JAX (``trajax``, ``diffilqrax``) — and none takes the CasADi/NumPy
RK4 step that the expert, the data and the evaluation share, which is what makes the comparison
"same problems, same dynamics". The algorithm is ~150 lines and tested against the expert and
against an exact LQR solution on a linear system.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from mlcore.errors import MlcoreError
from mlcore_trc_control.nonlinear.expert import NonlinearExpertSolution, _solution, lqr_on_linearisation
from mlcore_trc_control.nonlinear.systems import NonlinearSystem, rk4_step

__all__ = ["StepJacobians", "ilqr"]


class StepJacobians:
    """The RK4 step and its Jacobians ``(x_next, A, B)`` for a batch, by CasADi AD of the shared step."""

    def __init__(self, system: NonlinearSystem) -> None:
        try:
            import casadi as ca
        except ImportError:  # pragma: no cover - casadi is a dependency
            raise MlcoreError("iLQR needs CasADi: pip install 'casadi>=3.6'") from None
        n, m = system.n, system.m
        self.n, self.m = n, m
        xs, us, dts = ca.SX.sym("x", n), ca.SX.sym("u", m), ca.SX.sym("dt")

        def rhs(x: Any, u: Any) -> Any:
            return ca.vertcat(*system.rhs([x[i] for i in range(n)], [u[j] for j in range(m)], ca))

        nxt = rk4_step(rhs, xs, us, dts)
        a = ca.reshape(ca.jacobian(nxt, xs), n * n, 1)  # column-major
        b = ca.reshape(ca.jacobian(nxt, us), n * m, 1)
        self._fn = ca.Function("rk4_jac", [xs, us, dts], [nxt, a, b])
        self._mapped: dict[int, Any] = {}

    def __call__(self, x: np.ndarray, u: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``x (K, n)``, ``u (K, m)``, ``dt (K,)`` -> ``x_next (K, n)``, ``A (K, n, n)``, ``B (K, n, m)``."""
        count = len(x)
        if count not in self._mapped:
            self._mapped[count] = self._fn.map(count)
        nxt, a, b = self._mapped[count](x.T, u.T, np.asarray(dt, dtype=np.float64).reshape(1, -1))
        n, m = self.n, self.m
        a_arr = np.asarray(a).T.reshape(count, n, n).transpose(0, 2, 1)
        b_arr = np.asarray(b).T.reshape(count, m, n).transpose(0, 2, 1)
        return np.asarray(nxt).T, a_arr, b_arr


@functools.lru_cache(maxsize=8)
def _jacobians(system: NonlinearSystem) -> StepJacobians:
    return StepJacobians(system)


def _box_solve(
    huu: np.ndarray, gu: np.ndarray, hux: np.ndarray, u: np.ndarray, limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """Feed-forward ``k (M, m)`` and gains ``K (M, m, n)`` of ``min_du 1/2 du'H du + g'du`` with ``u + du`` in the box:
    the unconstrained step, then the dimensions it pushes out of the box clamped (no feedback) and the
    others re-solved given them."""
    k = -np.linalg.solve(huu, gu[..., None])[..., 0]
    if not np.isfinite(limit):
        return k, -np.linalg.solve(huu, hux)
    target = u + k
    clamped = np.abs(target) > limit
    if not clamped.any():
        return k, -np.linalg.solve(huu, hux)
    kc = np.clip(target, -limit, limit) - u  # the step that puts a clamped control on its bound
    free = (~clamped).astype(np.float64)
    cl = clamped.astype(np.float64)
    eye = np.eye(huu.shape[-1])
    hm = free[:, :, None] * huu * free[:, None, :] + cl[:, :, None] * eye
    rhs = free * (-gu - np.einsum("mij,mj->mi", huu, cl * kc)) + cl * kc
    k = np.linalg.solve(hm, rhs[..., None])[..., 0]
    gains = np.linalg.solve(hm, -free[:, :, None] * hux)
    return k, gains


def ilqr(
    system: NonlinearSystem,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray | None = None,
    *,
    init: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-7,
) -> NonlinearExpertSolution:
    """iLQR for every problem (see the module docstring); ``init (M, N, m)`` warm-starts it (default:
    the closed-loop LQR on the linearisation). ``status`` per problem: ``converged`` or ``max_iter``."""
    start = time.perf_counter()
    x0 = np.asarray(x0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    count, steps, n, m = len(x0), system.num_steps, system.n, system.m
    horizons = np.full(count, system.time_horizon) if horizons is None else np.asarray(horizons, dtype=np.float64)
    dt = horizons / steps
    limit = system.control_limit if system.control_limit > 0 else np.inf
    if init is None:
        init = lqr_on_linearisation(system, x0, targets, horizons).controls
    u = np.clip(np.asarray(init, dtype=np.float64).copy(), -limit, limit)
    jac = _jacobians(system)
    q, r, qf = system.Q, system.R, system.Qf
    eye = np.eye(m)

    def cost(states: np.ndarray, controls: np.ndarray, idx: np.ndarray) -> np.ndarray:
        c = system.cost(states, controls, targets[idx])
        return np.where(np.isfinite(c), c, np.inf)

    everyone = np.arange(count)
    x = system.rollout(x0, u, horizons)
    j = cost(x, u, everyone)
    mu = np.full(count, 1e-6)
    active = np.ones(count, dtype=bool)
    alphas = 0.5 ** np.arange(12)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        xs, us, rs = x[idx], u[idx], targets[idx]
        size = len(idx)
        # Jacobians of the RK4 step along the trajectories, all (problem, step) pairs at once
        _, a_all, b_all = jac(xs[:, :-1].reshape(-1, n), us.reshape(-1, m), np.repeat(dt[idx], steps))
        a_all = a_all.reshape(size, steps, n, n)
        b_all = b_all.reshape(size, steps, n, m)
        # backward pass
        vx = 2 * np.einsum("ij,mj->mi", qf, xs[:, -1] - rs)
        vxx = np.broadcast_to(2 * qf, (size, n, n)).copy()
        ks = np.empty((size, steps, m))
        gains = np.empty((size, steps, m, n))
        for k in range(steps - 1, -1, -1):
            a, b = a_all[:, k], b_all[:, k]
            qx = 2 * np.einsum("ij,mj->mi", q, xs[:, k] - rs) + np.einsum("mji,mj->mi", a, vx)
            qu = 2 * np.einsum("ij,mj->mi", r, us[:, k]) + np.einsum("mji,mj->mi", b, vx)
            vxx_a = vxx @ a
            qxx = 2 * q + np.swapaxes(a, 1, 2) @ vxx_a
            qux = np.swapaxes(b, 1, 2) @ vxx_a
            quu = 2 * r + np.swapaxes(b, 1, 2) @ vxx @ b
            kk, kg = _box_solve(quu + mu[idx, None, None] * eye, qu, qux, us[:, k], limit)
            ks[:, k], gains[:, k] = kk, kg
            kt = np.swapaxes(kg, 1, 2)
            vx = qx + np.einsum("mij,mj->mi", kt @ quu, kk) + np.einsum("mij,mj->mi", kt, qu)
            vx += np.einsum("mji,mj->mi", qux, kk)
            vxx = qxx + kt @ quu @ kg + kt @ qux + np.swapaxes(qux, 1, 2) @ kg
            vxx = 0.5 * (vxx + np.swapaxes(vxx, 1, 2))
        # forward pass with a backtracking line search, per problem
        accepted = np.zeros(size, dtype=bool)
        new_u, new_x, new_j = us.copy(), xs.copy(), j[idx].copy()
        for alpha in alphas:
            todo = np.flatnonzero(~accepted)
            if len(todo) == 0:
                break
            cand_u = np.empty((len(todo), steps, m))
            cand_x = np.empty((len(todo), steps + 1, n))
            cand_x[:, 0] = xs[todo, 0]
            with np.errstate(over="ignore", invalid="ignore"):
                for k in range(steps):
                    du = alpha * ks[todo, k] + np.einsum("mij,mj->mi", gains[todo, k], cand_x[:, k] - xs[todo, k])
                    cand_u[:, k] = np.clip(us[todo, k] + du, -limit, limit)
                    cand_x[:, k + 1] = system.step(cand_x[:, k], cand_u[:, k], dt[idx[todo]])
            cand_j = cost(cand_x, cand_u, idx[todo])
            better = cand_j < j[idx[todo]]
            pick = todo[better]
            new_u[pick], new_x[pick], new_j[pick] = cand_u[better], cand_x[better], cand_j[better]
            accepted[pick] = True
        gain = (j[idx] - new_j) / np.maximum(np.abs(j[idx]), 1e-12)
        u[idx], x[idx], j[idx] = new_u, new_x, new_j
        mu[idx] = np.where(accepted, np.maximum(mu[idx] / 10, 1e-9), mu[idx] * 10)
        done = (accepted & (gain < tol)) | (mu[idx] > 1e8)
        active[idx[done]] = False
    status = ["max_iter" if a else "converged" for a in active]
    return _solution(system, "ilqr", x0, targets, horizons, u, status, time.perf_counter() - start)
