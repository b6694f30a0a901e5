"""Experts for the nonlinear systems: direct multiple shooting (CasADi + IPOPT) and LQR on the
linearisation.

:func:`multiple_shooting` solves, for every problem ``(x_0, r, T)``::

    min_{X, U}  J = sum_{k<N} (X_k - r)'Q(X_k - r) + U_k'R U_k + (X_N - r)'Qf(X_N - r)
    s.t.        X_0 = x_0,   X_{k+1} = RK4(X_k, U_k, T/N),   |U_k| <= limit,   X_N = r

with the states of every node as decision variables (multiple shooting: the RK4 step couples only
neighbouring nodes, which keeps the problem well conditioned for long horizons and unstable
dynamics). One IPOPT solver is built per system and step count, with ``(x_0, r, dt)`` as
parameters, and reused for every problem. Warm starts (all are solved and the cheapest
converged solution is kept; with ``multistart=False`` they are tried in order until IPOPT converges):
the closed-loop LQR rollout where it reaches the target, the solution of the nearest problem
already solved (in ``(x_0, r, T)``; labels then come from the same family of local optima; its
trajectory initialises the nodes — its controls rolled out from another ``x_0`` would leave its
route on an unstable system), the
LQR rollout where it does not, a zero-control rollout.
When no start reaches ``X_N = r`` (the target is not reachable within the box) the problem is
solved without the terminal constraint (the stated cost only) and reported as such.

IPOPT finds local optima, and one pass in problem order is not global: a pendulum hanging near
``theta = ±pi`` can swing up either way, and the route the first pass finds is often not the
cheaper one (on 8 of 40 test problems the cheaper route was 42-48 % cheaper;
``tools/bench/trc_expert_neighbours.py``). :func:`neighbour_restarts` therefore re-solves every
problem from the solutions of its nearest neighbours (all of them, not only those solved before it),
for odd-symmetric systems (``f(-x, -u) = -f(x, u)``) also from the mirrored problems'
solutions and the negated ones (the other direction of swing), keeps the cheapest, and repeats for
the problems whose neighbours improved until a pass improves nothing: labels from one family of
optima, which is what a network can imitate.

:func:`lqr_on_linearisation` is the classical baseline: finite-horizon (time-varying) LQR of the
system linearised at the target and discretised exactly (ZOH), run in closed loop on the true
nonlinear dynamics with its controls clipped to the box.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from mlcore.errors import MlcoreError
from mlcore_trc_control.nonlinear.systems import NonlinearSystem, rk4_step

log = logging.getLogger(__name__)

__all__ = [
    "NonlinearExpertSolution",
    "ShootingSolver",
    "lqr_on_linearisation",
    "multiple_shooting",
    "neighbour_restarts",
    "problem_cost",
]


@attrs.define
class NonlinearExpertSolution:
    """Controls, states, costs and per-problem solver outcome for a batch of problems.

    ``status`` per problem: ``terminal`` (solved with ``x_N = r``), ``soft`` (solved without the
    terminal constraint: target not reached within the box), ``failed`` (IPOPT never converged;
    the best iterate is kept) or ``closed_loop`` (the LQR baseline).
    """

    expert: str
    controls: np.ndarray
    states: np.ndarray
    costs: np.ndarray
    terminal_errors: np.ndarray
    binds: np.ndarray
    status: list[str]
    seconds: float = 0.0
    #: problems whose solution :func:`neighbour_restarts` replaced by a cheaper one
    neighbour_improved: int = 0

    def summary(self, threshold: float = 0.1) -> dict[str, Any]:
        """Headline figures: success rate, mean terminal error and cost, limit use, solver outcomes."""
        counts = {s: self.status.count(s) for s in sorted(set(self.status))}
        return {
            "expert": self.expert,
            "success_rate": float(np.mean(self.terminal_errors < threshold)),
            "mean_terminal_error": float(self.terminal_errors.mean()),
            "mean_cost": float(self.costs.mean()),
            "control_limit_binds": int(self.binds.sum()),
            "control_limit_bind_fraction": float(self.binds.mean()),
            "status_counts": counts,
            "neighbour_improved": self.neighbour_improved,
            "seconds": self.seconds,
        }


def _solution(
    system: NonlinearSystem,
    expert: str,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray,
    controls: np.ndarray,
    status: list[str],
    seconds: float,
) -> NonlinearExpertSolution:
    states = system.rollout(x0, controls, horizons)
    costs = system.cost(states, controls, targets)
    errors = system.terminal_error(states[:, -1], targets)
    limit = system.control_limit
    binds = np.abs(controls).max(axis=(1, 2)) >= limit * (1 - 1e-4) if limit > 0 else np.zeros(len(x0), dtype=bool)
    return NonlinearExpertSolution(expert, controls, states, costs, errors, binds, status, seconds)


def problem_cost(
    system: NonlinearSystem, x0: np.ndarray, target: np.ndarray, horizon: float, controls: np.ndarray
) -> float:
    """``J`` of one problem's controls ``(N, m)``: the RK4 rollout from ``x0`` over ``horizon``, costed."""
    states = system.rollout(x0[None], controls[None], np.array([horizon], dtype=np.float64))
    return float(system.cost(states, controls[None], target[None])[0])


def _riccati_gains(a: np.ndarray, b: np.ndarray, system: NonlinearSystem, steps: int) -> np.ndarray:
    """Time-varying gains ``K_k`` ``(N, m, n)`` of the finite-horizon LQR of ``(a, b, Q, R, Qf)``."""
    p = system.Qf
    gains = np.empty((steps, system.m, system.n))
    for k in range(steps - 1, -1, -1):
        gain = np.linalg.solve(system.R + b.T @ p @ b, b.T @ p @ a)
        gains[k] = gain
        p = system.Q + a.T @ p @ (a - b @ gain)
        p = 0.5 * (p + p.T)
    return gains


def lqr_on_linearisation(
    system: NonlinearSystem, x0: np.ndarray, targets: np.ndarray, horizons: np.ndarray | None = None
) -> NonlinearExpertSolution:
    """Finite-horizon LQR of the dynamics linearised at each target, ZOH-discretised with the
    problem's ``dt``, applied in closed loop to the nonlinear system, clipped to the box.

    The linearisation point is the target with the free states (the rocket's mass) taken from
    ``x_0``, and the control that holds it at rest (zero; the rocket's hover thrust), which is
    also the feed-forward: ``u_k = u_trim - K_k (x_k - x_lin)``.
    """
    from mlcore_trc_control.lqr.systems import zoh_discretise

    start = time.perf_counter()
    x0 = np.asarray(x0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    steps = system.num_steps
    horizons = np.full(len(x0), system.time_horizon) if horizons is None else np.asarray(horizons, dtype=np.float64)
    controls = np.zeros((len(x0), steps, system.m))
    limit = system.control_limit if system.control_limit > 0 else np.inf
    free = list(system.free_states)
    points = targets.copy()
    points[:, free] = x0[:, free]
    trims = np.stack([system.trim_control(p) for p in points]) if len(x0) else np.zeros((0, system.m))
    gains = np.empty((len(x0), steps, system.m, system.n))
    cache: dict[tuple[float, ...], np.ndarray] = {}
    for i in range(len(x0)):
        dt = float(horizons[i]) / steps
        key = (round(dt, 12), *np.round(points[i], 12))
        if key not in cache:
            ac, bc = system.linearise(points[i], trims[i])
            a, b = zoh_discretise(ac, bc, dt)
            cache[key] = _riccati_gains(a, b, system, steps)
        gains[i] = cache[key]
    # the closed loop, all problems in lockstep; a diverged problem keeps the controls computed so far
    x = x0.copy()
    alive = np.ones(len(x0), dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            u = np.clip(trims - np.einsum("mij,mj->mi", gains[:, k], x - points), -limit, limit)
            controls[alive, k] = u[alive]
            x = system.step(x, np.where(alive[:, None], u, 0.0), horizons / steps)
            alive &= np.all(np.isfinite(x), axis=1)
            x = np.where(alive[:, None], x, 0.0)
    return _solution(
        system,
        "lqr_linearised",
        x0,
        targets,
        horizons,
        controls,
        ["closed_loop"] * len(x0),
        time.perf_counter() - start,
    )


class ShootingSolver:
    """One CasADi/IPOPT multiple-shooting NLP for ``system`` with ``N`` steps; parameters ``(x_0, r, dt)``."""

    def __init__(self, system: NonlinearSystem, *, max_iter: int = 300, tol: float = 1e-8) -> None:
        try:
            import casadi as ca
        except ImportError:  # pragma: no cover - casadi is a dependency
            raise MlcoreError(
                "the nonlinear expert needs CasADi: pip install 'casadi>=3.6' (its wheels bundle IPOPT)"
            ) from None
        self.system = system
        n, m, steps = system.n, system.m, system.num_steps
        self.n, self.m, self.steps = n, m, steps
        xs = ca.SX.sym("x", n)
        us = ca.SX.sym("u", m)
        dts = ca.SX.sym("dt")

        def rhs(x: Any, u: Any) -> Any:
            return ca.vertcat(*system.rhs([x[i] for i in range(n)], [u[j] for j in range(m)], ca))

        step = ca.Function("rk4", [xs, us, dts], [rk4_step(rhs, xs, us, dts)])
        x = ca.SX.sym("X", n, steps + 1)
        u = ca.SX.sym("U", m, steps)
        p = ca.SX.sym("p", 2 * n + 1)
        x0, r, dt = p[:n], p[n : 2 * n], p[2 * n]
        q, rr, qf = (ca.DM(w) for w in (system.Q, system.R, system.Qf))
        cost: Any = 0
        g = [x[:, 0] - x0]
        for k in range(steps):
            e = x[:, k] - r
            cost += ca.mtimes([e.T, q, e]) + ca.mtimes([u[:, k].T, rr, u[:, k]])
            g.append(x[:, k + 1] - step(x[:, k], u[:, k], dt))
        e = x[:, steps] - r
        cost += ca.mtimes([e.T, qf, e])
        tracked = [int(i) for i in system.tracked]
        self.num_terminal = len(tracked)
        g.append(x[tracked, steps] - r[tracked])  # the terminal constraint (tracked states): the last rows
        w = ca.vertcat(ca.vec(x), ca.vec(u))
        nlp: dict[str, Any] = {"x": w, "p": p, "f": cost, "g": ca.vertcat(*g)}
        opts: dict[str, Any] = {
            "ipopt.print_level": 0,
            "print_time": False,
            "ipopt.sb": "yes",
            "ipopt.max_iter": max_iter,
            "ipopt.tol": tol,
            "ipopt.acceptable_tol": 1e-6,
            # tight defects: the upright pendulum amplifies a state error ~e^(3.1 T) over the horizon
            "ipopt.constr_viol_tol": 1e-11,
        }
        self._solver = ca.nlpsol("shooting", "ipopt", nlp, opts)
        self._num_x = n * (steps + 1)
        limit = system.control_limit if system.control_limit > 0 else np.inf
        self._lbx = np.concatenate([np.full(self._num_x, -np.inf), np.full(m * steps, -limit)])
        self._ubx = -self._lbx.copy()
        self._ubx[: self._num_x] = np.inf
        # state bounds (the rocket's ground, z >= 0) on every node after the first
        lower = system.state_lower
        self._lbx[n : self._num_x] = np.tile(lower, steps)
        self._num_g = n * (steps + 1) + self.num_terminal

    def solve(
        self,
        x0: np.ndarray,
        target: np.ndarray,
        dt: float,
        guess_controls: np.ndarray,
        *,
        terminal: bool = True,
        guess_states: np.ndarray | None = None,
    ) -> tuple[np.ndarray, bool]:
        """``(controls (N, m), converged)`` from a control guess. The nodes' states start from
        ``guess_states (N + 1, n)`` when given (e.g. the trajectory of the solution the controls come
        from: multiple shooting keeps it even where a rollout from ``x0`` would diverge), else from
        the guess's RK4 rollout from ``x0``."""
        guess_controls = np.clip(guess_controls, self._lbx[self._num_x :].min(), self._ubx[self._num_x :].max())
        if guess_states is None:
            states = self.system.rollout(x0[None], guess_controls[None], np.array([dt * self.steps]))[0]
        else:
            states = np.array(guess_states, dtype=np.float64, copy=True)
            states[0] = x0
        states = np.where(np.isfinite(states), states, 0.0)
        states[1:] = np.maximum(states[1:], self._lbx[self.n : self._num_x].reshape(self.steps, self.n))
        w0 = np.concatenate([states.reshape(-1), guess_controls.reshape(-1)])  # column-major = node-major
        bound = np.zeros(self._num_g)
        lbg, ubg = bound.copy(), bound.copy()
        if not terminal:
            lbg[-self.num_terminal :], ubg[-self.num_terminal :] = -np.inf, np.inf
        out = self._solver(x0=w0, p=np.concatenate([x0, target, [dt]]), lbx=self._lbx, ubx=self._ubx, lbg=lbg, ubg=ubg)
        ok = bool(self._solver.stats()["success"])
        w = np.asarray(out["x"]).reshape(-1)
        return w[self._num_x :].reshape(self.steps, self.m), ok


def multiple_shooting(
    system: NonlinearSystem,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray | None = None,
    *,
    lqr: NonlinearExpertSolution | None = None,
    success_threshold: float = 0.1,
    solver: ShootingSolver | None = None,
    terminal: bool = True,
    multistart: bool = True,
    neighbours: int = 5,
    neighbour_passes: int = 3,
    library: int = 0,
    library_problems: int = 0,
    warm_starts: np.ndarray | None = None,
    trajectory_starts: tuple[np.ndarray, np.ndarray] | None = None,
) -> NonlinearExpertSolution:
    """The terminal-constrained, box-constrained optimum of ``J`` for every problem (see the module docstring).

    ``terminal=False`` drops ``x_N = r`` (the soft terminal cost ``Qf`` only): the same problem as
    iLQR and LQR solve, for a like-for-like cost comparison (expert name ``multiple_shooting_soft``).
    ``multistart`` solves from every warm start and keeps the cheapest converged solution (else the
    first that converges): IPOPT finds local optima, and on the pendulum the first-converged start
    was up to 5x costlier than iLQR's on 2 of 30 problems. With ``multistart``, ``neighbours > 0``
    then runs :func:`neighbour_restarts` (at most ``neighbour_passes`` passes, ``library`` shared starts
    tried on ``library_problems`` problems, 0 = all) over the converged problems.
    ``warm_starts`` ``(M, N, m)`` adds one start per problem (e.g. a learner's plan, for DAgger);
    ``trajectory_starts = (controls (M, N, m), states (M, N + 1, n))`` one more whose nodes start on
    the given trajectory (e.g. a known solution's route from near ``x_0``: DAgger's label tails).
    """
    start = time.perf_counter()
    x0 = np.asarray(x0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    count, steps = len(x0), system.num_steps
    horizons = np.full(count, system.time_horizon) if horizons is None else np.asarray(horizons, dtype=np.float64)
    if lqr is None:
        lqr = lqr_on_linearisation(system, x0, targets, horizons)
    solver = solver or ShootingSolver(system)
    controls = np.zeros((count, steps, system.m))
    status: list[str] = []
    keys = np.concatenate([x0, targets, horizons[:, None]], axis=1)
    scale = np.where(keys.std(axis=0) > 1e-9, keys.std(axis=0), 1.0)
    solved: list[int] = []
    for i in range(count):
        dt = float(horizons[i]) / steps
        neighbour: list[tuple[np.ndarray, np.ndarray | None]] = []
        if solved:
            dist = np.linalg.norm((keys[solved] - keys[i]) / scale, axis=1)
            j = solved[int(np.argmin(dist))]
            neighbour.append((controls[j], _trajectory(system, x0[j], controls[j], horizons[j])))
        # LQR first where it (nearly) reaches the target: its basin is the one to refine; else the
        # nearest solved problem's controls (a neighbour's swing-up from near upright can land
        # IPOPT in a needlessly costly local optimum, so it only goes first where LQR fails)
        lqr_first = lqr.terminal_errors[i] < success_threshold
        own: list[tuple[np.ndarray, np.ndarray | None]] = [(lqr.controls[i], None)]
        guesses = [*own, *neighbour] if lqr_first else [*neighbour, *own]
        if warm_starts is not None:
            guesses.append((np.asarray(warm_starts[i], dtype=np.float64), None))
        if trajectory_starts is not None:
            guesses.append((np.asarray(trajectory_starts[0][i], dtype=np.float64), trajectory_starts[1][i]))
        guesses.append((np.zeros((steps, system.m)), None))
        best: np.ndarray | None = None
        best_cost = np.inf
        for guess, guess_states in guesses:
            u, ok = solver.solve(x0[i], targets[i], dt, guess, terminal=terminal, guess_states=guess_states)
            if not ok:
                continue
            if not multistart:
                best = u
                break
            cost = problem_cost(system, x0[i], targets[i], horizons[i], u)
            if cost < best_cost:
                best, best_cost = u, cost
        if best is not None:
            status.append("terminal" if terminal else "soft")
            solved.append(i)
        else:
            u, ok = solver.solve(x0[i], targets[i], dt, lqr.controls[i], terminal=False)
            best = u
            status.append("soft" if ok else "failed")
        controls[i] = best
    if system.control_limit > 0:  # IPOPT honours bounds to its tolerance (~1e-8): make them exact
        controls = np.clip(controls, -system.control_limit, system.control_limit)
    improved = 0
    if multistart and (neighbours > 0 or library > 0) and solved:
        converged = np.zeros(count, dtype=bool)
        converged[solved] = True
        controls, improved = neighbour_restarts(
            system,
            x0,
            targets,
            horizons,
            controls,
            converged,
            solver=solver,
            neighbours=neighbours,
            max_passes=neighbour_passes,
            library=library,
            library_problems=library_problems,
            terminal=terminal,
        )
    result = _solution(
        system,
        "multiple_shooting" if terminal else "multiple_shooting_soft",
        x0,
        targets,
        horizons,
        controls,
        status,
        time.perf_counter() - start,
    )
    result.neighbour_improved = improved
    log.info(
        "multiple shooting: %d %s problems in %.1fs (%s, %d improved by neighbour restarts); success %.1f%%, "
        "mean cost %.4g (LQR on the linearisation %.4g, success %.1f%%)",
        count,
        system.name,
        result.seconds,
        result.summary(success_threshold)["status_counts"],
        improved,
        100 * float(np.mean(result.terminal_errors < success_threshold)),
        float(result.costs.mean()),
        float(lqr.costs.mean()),
        100 * float(np.mean(lqr.terminal_errors < success_threshold)),
    )
    return result


def _trajectory(system: NonlinearSystem, x0: np.ndarray, controls: np.ndarray, horizon: float) -> np.ndarray:
    """The ``(N + 1, n)`` trajectory of one solved problem: its controls rolled out from its own start."""
    return system.rollout(x0[None], controls[None], np.array([horizon]))[0]  # type: ignore[no-any-return]


def _rms(u: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(u))))


def neighbour_restarts(
    system: NonlinearSystem,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray,
    controls: np.ndarray,
    converged: np.ndarray,
    *,
    solver: ShootingSolver | None = None,
    neighbours: int = 5,
    max_passes: int = 3,
    terminal: bool = True,
    min_saving: float = 1e-3,
    distinct: float = 0.1,
    library: int = 0,
    library_problems: int | Sequence[int] = 0,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Improve converged solutions from their neighbours' (see the module docstring): ``(controls, improved)``.

    The pool of solved problems holds every converged problem and, for an odd-symmetric system, its
    mirror ``(-x_0, -r, T)`` solved by ``-u``; problem ``i`` is re-solved (IPOPT, same terminal
    setting) from the controls of its ``neighbours`` nearest pool entries in scaled ``(x_0, r, T)``
    and, when odd-symmetric, their negations. A start within ``distinct`` (RMS, relative to the
    current controls' RMS) of one already tried is skipped: it would land in the same optimum.
    A converged solution replaces the current one when it is more than ``min_saving`` cheaper. Later
    passes revisit only the problems with an improved pool neighbour; ``improved`` counts problems.

    ``library > 0`` adds, in the first pass, the solutions of ``library`` converged problems drawn
    from the whole set (``seed``; and their negations when odd-symmetric) to every problem's
    starts: a route that no neighbourhood holds can come from afar (on the pendulum the ~45 %
    cheaper swing-up for ``1 <= |theta_0| < 2`` came from starts at ``|theta_0| ~ 2-2.7`` or near
    upright). Each library entry costs up to two more solves per problem. ``library_problems > 0``
    tries the library only on that many converged problems (drawn with ``seed``), which pass 1 visits
    first: a route they find then reaches the rest through their neighbourhoods, in the same pass,
    for a fraction of the solves (a library of 64 on all 1000 pendulum problems would take ~3 h here).
    ``library_problems`` may instead list the problems to try it on (e.g. the costliest labels);
    non-converged ones among them are skipped.
    """
    controls = np.array(controls, dtype=np.float64, copy=True)
    count = len(x0)
    index = np.flatnonzero(converged)
    if count == 0 or len(index) < 2 or (neighbours <= 0 and library <= 0):
        return controls, 0
    solver = solver or ShootingSolver(system)
    mirror = system.odd_symmetric
    keys = np.concatenate([x0, targets, horizons[:, None]], axis=1)
    flip = np.concatenate([-np.ones(2 * system.n), [1.0]])
    pool_keys = np.concatenate([keys[index], keys[index] * flip]) if mirror else keys[index]
    pool_sign = np.concatenate([np.ones(len(index)), -np.ones(len(index))]) if mirror else np.ones(len(index))
    pool_id = np.concatenate([index, index]) if mirror else index
    scale = np.where(pool_keys.std(axis=0) > 1e-9, pool_keys.std(axis=0), 1.0)
    near: dict[int, list[tuple[int, float]]] = {}
    rng = np.random.default_rng(seed)
    shelf = rng.choice(index, min(library, len(index)), replace=False).tolist()
    probed = set(index.tolist())
    if library > 0 and np.ndim(library_problems) > 0:  # the problems named
        probed = {int(p) for p in np.atleast_1d(library_problems)} & probed
    elif library > 0 and 0 < (drawn := int(np.asarray(library_problems))) < len(index):
        probed = set(rng.choice(index, drawn, replace=False).tolist())
    for problem in index.tolist():
        dist = np.linalg.norm((pool_keys - keys[problem]) / scale, axis=1)
        dist[(pool_id == problem) & (pool_sign > 0)] = np.inf
        order = np.argsort(dist)[: max(neighbours, 0)]
        near[problem] = [(int(pool_id[o]), float(pool_sign[o])) for o in order if np.isfinite(dist[o])]

    costs = {p: problem_cost(system, x0[p], targets[p], horizons[p], controls[p]) for p in index.tolist()}
    paths: dict[int, np.ndarray] = {}  # each pool problem's own trajectory, recomputed when its label changes

    def path(j: int) -> np.ndarray:
        if j not in paths:
            paths[j] = _trajectory(system, x0[j], controls[j], horizons[j])
        return paths[j]

    limit = system.control_limit if system.control_limit > 0 else np.inf
    improved: set[int] = set()
    # pass 1 visits the library's problems first: what they find spreads to their neighbours in it
    active: list[int] = sorted(index.tolist(), key=lambda p: p not in probed)
    for passes in range(1, max_passes + 1):
        changed: set[int] = set()
        for i in active:
            # (controls, the trajectory they come from): a near neighbour's trajectory initialises the
            # nodes (its rollout from x_0 would leave it: the upright pendulum amplifies the difference)
            starts: list[tuple[np.ndarray, np.ndarray | None]] = [
                (sign * controls[j], sign * path(j)) for j, sign in near[i]
            ]
            if passes == 1 and i in probed:
                # from afar: their trajectories start far from x_0, so these start from their rollout
                starts += [(controls[j].copy(), None) for j in shelf if j != i]
            if mirror:  # the other direction of swing: no trajectory of its own, so its rollout from x_0
                starts += [(-u, None) for u, _ in starts]
            # (controls, initialised from a trajectory): the same controls rolled out from x_0 are another start
            tried = [(controls[i].copy(), False)]
            floor = distinct * max(_rms(controls[i]), 1e-6)
            dt = float(horizons[i]) / system.num_steps
            for guess, guess_states in starts:
                kind = guess_states is not None
                if any(k == kind and _rms(guess - t) <= floor for t, k in tried):
                    continue
                tried.append((guess, kind))
                u, ok = solver.solve(x0[i], targets[i], dt, guess, terminal=terminal, guess_states=guess_states)
                if not ok:
                    continue
                u = np.clip(u, -limit, limit)
                cost = problem_cost(system, x0[i], targets[i], horizons[i], u)
                if cost < costs[i] * (1 - min_saving):
                    controls[i], costs[i] = u, cost
                    paths.pop(i, None)
                    changed.add(i)
        improved |= changed
        log.info(
            "neighbour restarts, pass %d: %d of %d problems re-solved, %d improved",
            passes,
            len(active),
            count,
            len(changed),
        )
        if not changed:
            break
        active = [i for i in near if any(j in changed for j, _ in near[i])]
    return controls, len(improved)
