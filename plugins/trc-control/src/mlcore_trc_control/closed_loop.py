"""Closed-loop (re-planning) deployment of a control-sequence policy, as model-predictive control does.

An open-loop policy maps ``[x_0, r, T]`` to all ``N`` controls once; any error then grows
unchecked (on the upright pendulum by up to ``e^(3.1 T)``). In closed loop the policy re-plans
from the *measured* state every ``replan_every`` steps and only the start of each plan is applied:

    x = x_0
    for k in 0, replan_every, 2 replan_every, ... < N:
        plan = planner(x, r, T_plan, steps=...)      # controls on the grid T_plan / len(plan)
        apply the plan's first replan_every plant steps (dt = T / N each), measuring x

``horizon`` picks ``T_plan``:

- ``shrinking`` (default): the remaining time ``T - t``, as MPC of a fixed-time task does: the
  re-plan is the tail of the original problem (Bellman), so an exact planner loses nothing. A
  network's plan always has ``N`` steps, on the grid ``(T - t) / N``, finer than the plant's: each
  plant step applies the plan's time average over that step (the plan resampled). The network
  then sees horizons down to ``dt``, outside a fixed-horizon training set unless DAgger
  (:mod:`mlcore_trc_control.dagger`) adds them.
- ``receding``: the full horizon ``T`` from every state (the plan's grid is the plant's). The
  inputs stay inside a fixed-horizon training distribution, but the target is always ``T`` ahead:
  on the pendulum swing-up, which needs most of ``T``, even the exact expert re-planned this way
  reached the target in 3 of 10 problems (it keeps postponing the arrival).

A *planner* is any callable ``(states (B, n), targets (B, n), horizons (B,), steps=K) -> controls
(B, K', m)`` whose plan spans ``horizons`` in ``K'`` equal steps; ``steps`` is the number of plant
steps the plan must cover (``N - k`` when shrinking), which a planner may use or ignore:
:func:`policy_planner` wraps a network or the linear policy (always ``K' = N``: in shrinking mode
its grid ``(T - t) / N`` is finer than the plant's), :class:`ExpertPlanner` re-solves the
multiple-shooting NLP from each measured state on the plant's own grid (``K' = steps``: then the
re-plan is the exact tail problem, and without noise closed loop reproduces the open-loop optimum).
``control_noise`` adds Gaussian actuation noise (then clips to the box) to every applied control,
for open-versus-closed-loop robustness figures (:func:`open_loop_rollout` applies the same noise
to a fixed plan).

Example::

    from mlcore_trc_control.closed_loop import closed_loop_rollout, policy_planner

    result = closed_loop_rollout(system, x0, targets, horizons, policy_planner(model))
    result.summary()          # success rate, mean terminal error, mean cost J
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from mlcore.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from mlcore_trc_control.nonlinear.systems import NonlinearSystem

__all__ = [
    "HORIZON_MODES",
    "ClosedLoopResult",
    "ExpertPlanner",
    "Planner",
    "clip_to_box",
    "closed_loop_rollout",
    "open_loop_rollout",
    "plant_step",
    "policy_planner",
    "resample_plan",
]

#: ``(states (B, n), targets (B, n), horizons (B,), steps=K) -> controls (B, K', m)``
Planner = Callable[..., np.ndarray]
HorizonMode = Literal["receding", "shrinking"]
HORIZON_MODES: tuple[str, ...] = ("receding", "shrinking")


@attrs.define
class ClosedLoopResult:
    """The executed trajectories of a (closed- or open-loop) rollout and their figures."""

    states: np.ndarray  # (M, N+1, n)
    controls: np.ndarray  # (M, N, m) the controls actually applied
    targets: np.ndarray  # (M, n)
    costs: np.ndarray  # (M,) the stated J of the executed trajectory
    terminal_errors: np.ndarray  # (M,) ||x_N - r|| (inf where the rollout diverged)
    replans: int  # planner calls (each on the whole batch)
    seconds: float

    def summary(self, threshold: float = 0.1, reference_cost: float | None = None) -> dict[str, float]:
        """Success rate, mean/median terminal error, mean cost and (with ``reference_cost``) its gap."""
        out = {
            "success_rate": float(np.mean(self.terminal_errors < threshold)),
            "mean_terminal_error": float(np.mean(self.terminal_errors)),
            "median_terminal_error": float(np.median(self.terminal_errors)),
            "mean_cost": float(np.mean(self.costs)),
            "replans": float(self.replans),
            "seconds": self.seconds,
        }
        if reference_cost is not None:
            out["cost_gap"] = out["mean_cost"] / reference_cost - 1.0
        return out


def resample_plan(plan: np.ndarray, plan_dt: np.ndarray, start: float | np.ndarray, dt: np.ndarray) -> np.ndarray:
    """The time average ``(B, m)`` of piecewise-constant plans ``(B, N, m)`` (step ``plan_dt (B,)``)
    over ``[start, start + dt]`` (seconds since the plan began); past its end the last control holds."""
    steps = plan.shape[1]
    t0 = np.broadcast_to(np.asarray(start, dtype=np.float64), dt.shape)
    edges = np.arange(steps + 1)[None, :] * plan_dt[:, None]  # (B, N+1)
    edges[:, -1] = np.inf  # the last control holds beyond the plan
    lo = np.clip(edges[:, :-1], t0[:, None], (t0 + dt)[:, None])
    hi = np.clip(edges[:, 1:], t0[:, None], (t0 + dt)[:, None])
    weights = (hi - lo) / dt[:, None]  # (B, N), rows sum to 1
    return np.einsum("bk,bkm->bm", weights, plan)  # type: ignore[no-any-return]


def clip_to_box(system: NonlinearSystem | Any, u: np.ndarray) -> np.ndarray:
    """``u`` clipped to the system's box ``|u| <= control_limit`` (unchanged when the limit is 0)."""
    limit = float(system.control_limit)
    return np.clip(u, -limit, limit) if limit > 0 else u


def _finish(
    system: Any, states: np.ndarray, controls: np.ndarray, targets: np.ndarray, replans: int, start: float
) -> ClosedLoopResult:
    with np.errstate(over="ignore", invalid="ignore"):
        errors = np.linalg.norm(states[:, -1] - targets, axis=1)
        costs = system.cost(states, controls, targets)
    errors = np.where(np.isfinite(errors), errors, np.inf)
    costs = np.where(np.isfinite(costs), costs, np.inf)
    return ClosedLoopResult(states, controls, targets, costs, errors, replans, time.perf_counter() - start)


def plant_step(system: Any, x: np.ndarray, u: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """One plant step of a batch: RK4 over ``dt`` (nonlinear; overflow gives inf/nan, not a warning)
    or ``A x + B u`` (linear, ``dt`` already in the matrices)."""
    if getattr(system, "kind", "linear") == "nonlinear":
        with np.errstate(over="ignore", invalid="ignore"):
            return system.step(x, u, dt)  # type: ignore[no-any-return]
    return x @ system.A.T + u @ system.B.T  # type: ignore[no-any-return]


def open_loop_rollout(
    system: Any,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray,
    controls: np.ndarray,
    *,
    control_noise: float = 0.0,
    seed: int = 0,
) -> ClosedLoopResult:
    """Apply fixed plans ``controls (M, N, m)`` (plus clipped actuation noise) without feedback."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = np.asarray(x0, dtype=np.float64)
    steps = controls.shape[1]
    dt = np.asarray(horizons, dtype=np.float64) / steps
    states = np.empty((x.shape[0], steps + 1, x.shape[1]))
    states[:, 0] = x
    applied = np.empty_like(controls, dtype=np.float64)
    for k in range(steps):
        u = controls[:, k] + (rng.normal(0.0, control_noise, controls[:, k].shape) if control_noise > 0 else 0.0)
        applied[:, k] = u = clip_to_box(system, u)
        x = plant_step(system, x, u, dt)
        states[:, k + 1] = x
    return _finish(system, states, applied, np.asarray(targets, dtype=np.float64), 0, start)


def closed_loop_rollout(
    system: Any,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray,
    planner: Planner,
    *,
    replan_every: int = 1,
    horizon: str = "shrinking",
    control_noise: float = 0.0,
    seed: int = 0,
) -> ClosedLoopResult:
    """Run ``planner`` in closed loop on ``system`` for problems ``(x0, targets, horizons)`` (see the
    module docstring); every problem has ``N = system.num_steps`` plant steps of ``T / N``."""
    if horizon not in HORIZON_MODES:
        raise ConfigError(f"closed_loop.horizon={horizon!r} (allowed: {', '.join(HORIZON_MODES)})")
    if replan_every < 1:
        raise ConfigError(f"closed_loop.replan_every={replan_every} must be >= 1")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = np.asarray(x0, dtype=np.float64).copy()
    targets = np.asarray(targets, dtype=np.float64)
    horizons = np.asarray(horizons, dtype=np.float64)
    steps = int(system.num_steps)
    dt = horizons / steps
    states = np.empty((x.shape[0], steps + 1, x.shape[1]))
    states[:, 0] = x
    applied = np.empty((x.shape[0], steps, int(system.m)))
    replans = 0
    plan = np.zeros((x.shape[0], steps, int(system.m)))
    plan_dt, plan_start = dt, 0
    for k in range(steps):
        if k % replan_every == 0:
            remaining = horizons - k * dt
            t_plan = horizons if horizon == "receding" else remaining
            safe = np.where(np.isfinite(x), x, 0.0)  # a diverged state: plan from 0, the failure stands
            left = steps - k if horizon == "shrinking" else steps
            plan = np.asarray(planner(safe, targets, t_plan, steps=left), dtype=np.float64)
            plan_dt, plan_start = t_plan / plan.shape[1], k
            replans += 1
        u = resample_plan(plan, plan_dt, (k - plan_start) * dt, dt)
        if control_noise > 0:
            u = u + rng.normal(0.0, control_noise, u.shape)
        applied[:, k] = u = clip_to_box(system, u)
        x = plant_step(system, x, u, dt)
        states[:, k + 1] = x
    return _finish(system, states, applied, targets, replans, start)


def policy_planner(
    policy: nn.Module | Callable[[np.ndarray], np.ndarray], *, clip_to: float = 0.0, device: Any = "cpu"
) -> Planner:
    """A planner from a network (``[x, r, T] -> controls`` through :func:`predict_controls`) or a
    NumPy callable (the linear policy); ``clip_to > 0`` clips its controls to ``|u| <= clip_to``."""
    from torch import nn

    from mlcore_trc_control.evaluation import predict_controls

    def plan(states: np.ndarray, targets: np.ndarray, horizons: np.ndarray, steps: int | None = None) -> np.ndarray:
        problems = np.concatenate([states, targets, horizons[:, None]], axis=1)
        if isinstance(policy, nn.Module):
            controls = predict_controls(policy, problems, device=device)
        else:
            controls = np.asarray(policy(problems), dtype=np.float64)
        return np.clip(controls, -clip_to, clip_to) if clip_to > 0 else controls

    return plan


class ExpertPlanner:
    """Re-solves the multiple-shooting NLP (CasADi + IPOPT) from each measured state.

    The plan has ``steps`` steps of ``horizons / steps`` (the plant's grid; one solver per step
    count, built on first use). Warm starts, in order until IPOPT meets ``x_N = r``: this
    problem's previous plan with its executed part dropped (resampled to the new length), then
    zeros; if neither converges, or too few steps are left to meet ``x_N = r`` (``steps * m``
    below the number of tracked states), the stated cost without the terminal constraint is solved
    (the plan is still used). ``initial (M, N, m)`` (e.g. the expert's open-loop labels)
    warm-starts the first plan of each problem, so the closed loop starts from the same local
    optimum as the open-loop expert (a zero start can land IPOPT in a costlier one).
    ``status_counts`` counts ``terminal`` / ``soft`` / ``failed`` solves.
    """

    def __init__(self, system: NonlinearSystem, *, initial: np.ndarray | None = None, max_iter: int = 200) -> None:
        self.system = system
        self.max_iter = max_iter
        self.initial = initial
        self._solvers: dict[int, Any] = {}
        self._previous: np.ndarray | None = None
        self.status_counts: dict[str, int] = {"terminal": 0, "soft": 0, "failed": 0}

    def reset(self) -> None:
        """Forget the previous plans and the solver tallies (a new run)."""
        self._previous = None
        self.status_counts = {"terminal": 0, "soft": 0, "failed": 0}

    def _solver(self, steps: int) -> Any:
        if steps not in self._solvers:
            from mlcore_trc_control.nonlinear.expert import ShootingSolver

            self._solvers[steps] = ShootingSolver(attrs.evolve(self.system, num_steps=steps), max_iter=self.max_iter)
        return self._solvers[steps]

    def __call__(
        self, states: np.ndarray, targets: np.ndarray, horizons: np.ndarray, steps: int | None = None
    ) -> np.ndarray:
        """Plans ``(B, steps, m)`` from ``states`` to ``targets`` over ``horizons``."""
        steps = int(steps or self.system.num_steps)
        m, count = self.system.m, states.shape[0]
        solver = self._solver(steps)
        previous = self._previous if self._previous is not None and self._previous.shape[0] == count else None
        if previous is None and self.initial is not None and self.initial.shape[0] == count:
            previous = self.initial
        plans = np.zeros((count, steps, m))
        for i in range(count):
            guesses = []
            if previous is not None:  # the unexecuted tail of the last plan, stretched to `steps`
                old = previous[i]
                tail = old[max(0, old.shape[0] - steps) :] if old.shape[0] >= steps else old
                index = np.minimum((np.arange(steps) * tail.shape[0]) // steps, tail.shape[0] - 1)
                guesses.append(tail[index])
            guesses.append(np.zeros((steps, m)))
            dt = float(horizons[i]) / steps
            # fewer control values than terminal conditions (the last step or two): x_N = r is
            # overconstrained (IPOPT only warns and fails), so go straight to the soft problem
            exact = steps * m >= len(self.system.tracked)
            for guess in guesses if exact else ():
                u, ok = solver.solve(states[i], targets[i], dt, guess)
                if ok:
                    self.status_counts["terminal"] += 1
                    break
            else:
                u, ok = solver.solve(states[i], targets[i], dt, guesses[0], terminal=False)
                self.status_counts["soft" if ok else "failed"] += 1
            plans[i] = u
        self._previous = plans
        return clip_to_box(self.system, plans)
