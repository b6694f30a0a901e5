"""Plan selection in closed loop: candidate plans ranked by their simulated outcome on the known model.

A network's plan is a guess; the plant model is known. :class:`SelectingPlanner` is a planner
(see :mod:`mlcore_trc_control.closed_loop`) that, at every re-plan:

1. asks a *proposer* for candidate plans from the measured state — :func:`network_proposer`: TRC's
   answers after each of its first ``C`` outer cycles (one forward pass; cycles beyond the trained
   number are test-time iterations), or any other network's single plan;
2. resamples each onto the plant's grid (the time averages the closed loop would apply) and adds
   the unexecuted tail of the plan it committed to at the previous re-plan;
3. simulates every candidate to the end of the horizon with the system's own RK4 step and commits
   to the best: among the candidates whose predicted terminal error is at most ``margin`` the one
   with the lowest cost-to-go ``J``; if none lands, the one with the smallest predicted error.

Because the previous tail is always a candidate and, without noise, the model is exact, the
committed plan's predicted outcome never gets worse between re-plans (ranked as above): the closed
loop does at least as well as the best plan proposed so far. The plans are on the plant's grid, so
only the ``shrinking`` horizon (plan over the time left) is supported.

By default this is *selection*, not optimisation: no gradient step or solver iteration changes a
candidate. What TRC brings is several answers per call (its refinement cycles); a feed-forward
network brings one (plus the kept tail). ``polish_iterations > 0`` (nonlinear systems) then runs
that many iLQR iterations (:func:`~mlcore_trc_control.nonlinear.ilqr.ilqr`) from the committed plan
and keeps the result where it ranks better — MPC with a local solver warm-started by the
selection; :func:`lqr_proposer` is the classical warm start to compare it with.

``catch = ε > 0`` (nonlinear systems) hands every candidate over to the LQR of the linearisation
from the first simulated state within ``ε`` of the target (:func:`lqr_catch`): the candidate is
judged, and if chosen executed, as "its controls until it gets there, the LQR's from there". The
open-loop outcome alone is biased where the target is unstable: a plan that arrives early must then
balance open loop, and its simulated error grows with the time left (on the upright pendulum about
``e^{3.1 t}``), so a plan arriving late (one more swing) looked better on paper.
:func:`combined_proposer` pools proposers: a network's candidates beside the LQR's plan let the
selection hand the near-target starts, where the linearisation is accurate, to the LQR.

Example::

    from mlcore_trc_control.closed_loop import closed_loop_rollout
    from mlcore_trc_control.selection import SelectingPlanner, network_proposer

    planner = SelectingPlanner(system, network_proposer(trc, cycles=6))
    result = closed_loop_rollout(system, x0, targets, horizons, planner)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlcore.errors import ConfigError
from mlcore_trc_control.closed_loop import clip_to_box, plant_step, resample_plan

__all__ = [
    "Proposer",
    "SelectingPlanner",
    "combined_proposer",
    "lqr_catch",
    "lqr_proposer",
    "network_proposer",
    "selecting_planner",
    "simulated_outcome",
]

#: ``(states (B, n), targets (B, n), horizons (B,)) -> plans (C, B, K, m)``, each spanning ``horizons``
Proposer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def network_proposer(
    policy: Any,
    *,
    cycles: int = 0,
    clip_to: float = 0.0,
    device: Any = "cpu",
    jitter: Sequence[float] | None = None,
) -> Proposer:
    """Candidate plans of a network: with ``cycles > 0`` and a model that has ``forward_cycles``
    (TRC), its answers after outer cycles ``1..cycles``; otherwise its one plan (a NumPy callable,
    such as the linear policy, also gives one). ``clip_to > 0`` clips to ``|u| <= clip_to``.

    ``jitter = [d_1, ..., d_n]`` also asks the network from the ``2n`` states ``x ± d_i e_i``
    (test-time input perturbation: near a state where the best manoeuvre switches, e.g. which way
    to swing, a neighbour's plan can be the better one); every query gives its candidates, and the
    simulation from the true state ranks them all."""
    import torch

    offsets: list[np.ndarray] = []
    for i, d in enumerate(jitter or ()):
        if float(d) > 0:
            step = np.zeros(len(jitter or ()))
            step[i] = float(d)
            offsets += [step, -step]

    def propose(states: np.ndarray, targets: np.ndarray, horizons: np.ndarray) -> np.ndarray:
        if offsets and len(offsets[0]) != states.shape[1]:
            raise ConfigError(f"closed_loop.select_jitter has {len(offsets[0])} entries for {states.shape[1]} states")
        plans = [_query(states, targets, horizons)]
        plans += [_query(states + offset, targets, horizons) for offset in offsets]
        return np.concatenate(plans)

    def _query(states: np.ndarray, targets: np.ndarray, horizons: np.ndarray) -> np.ndarray:
        problems = np.concatenate([states, targets, horizons[:, None]], axis=1)
        if isinstance(policy, torch.nn.Module):
            was_training = policy.training
            policy.eval()
            try:
                with torch.inference_mode():
                    x = torch.as_tensor(problems, dtype=torch.float32, device=device)
                    forward_cycles = getattr(policy, "forward_cycles", None)
                    if cycles > 0 and callable(forward_cycles):
                        outs = forward_cycles(x, num_outer_cycles=cycles)
                    else:
                        outs = [policy(x)]
                    plans = np.stack([o.double().cpu().numpy() for o in outs])
            finally:
                policy.train(was_training)
        else:
            plans = np.asarray(policy(problems), dtype=np.float64)[None]
        return np.clip(plans, -clip_to, clip_to) if clip_to > 0 else plans

    return propose


def selecting_planner(
    system: Any,
    network: Any,
    *,
    cycles: int,
    margin: float = 0.05,
    clip_to: float = 0.0,
    device: Any = "cpu",
    jitter: Sequence[float] | None = None,
    with_lqr: bool = False,
    polish_iterations: int = 0,
    keep_previous: bool = True,
    catch: float = 0.0,
) -> SelectingPlanner:
    """Plan selection for one network as the ``trc`` pipeline deploys it (the ``closed_loop.select_*``
    keys): its proposals (:func:`network_proposer`), beside the re-planned LQR's plan when
    ``with_lqr`` (nonlinear systems; ignored for linear ones), ranked by :class:`SelectingPlanner`.

    ``network=None`` proposes the LQR's plan alone (needs ``with_lqr`` and a nonlinear system);
    ``keep_previous=False`` drops the previous plan's kept tail from the candidates (an ablation);
    ``catch > 0`` hands every candidate to the LQR within that distance of the target (:func:`lqr_catch`)."""
    proposers: list[Proposer] = []
    if network is not None:
        proposers.append(
            network_proposer(network, cycles=cycles, clip_to=clip_to, device=device, jitter=jitter or None)
        )
    if with_lqr and getattr(system, "kind", "linear") == "nonlinear":
        proposers.append(lqr_proposer(system))
    if not proposers:
        raise ConfigError(
            "plan selection without a network needs the LQR's plan (with_lqr on a nonlinear system), "
            f"not {getattr(system, 'name', 'this system')!r} with with_lqr={with_lqr}"
        )
    proposer = proposers[0] if len(proposers) == 1 else combined_proposer(*proposers)
    return SelectingPlanner(
        system,
        proposer,
        margin=margin,
        keep_previous=keep_previous,
        polish_iterations=polish_iterations,
        catch=catch,
    )


def lqr_proposer(system: Any) -> Proposer:
    """One candidate: the closed-loop LQR of the linearisation at the target, rolled out from the
    measured state over the time left (the expert's and iLQR's default warm start)."""
    from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation

    def propose(states: np.ndarray, targets: np.ndarray, horizons: np.ndarray) -> np.ndarray:
        return lqr_on_linearisation(system, states, targets, horizons).controls[None]  # type: ignore[no-any-return]

    return propose


def combined_proposer(*proposers: Proposer) -> Proposer:
    """All candidates of ``proposers`` together (e.g. TRC's cycles and the LQR's plan); their plans
    must have the same number of steps."""

    def propose(states: np.ndarray, targets: np.ndarray, horizons: np.ndarray) -> np.ndarray:
        return np.concatenate([p(states, targets, horizons) for p in proposers])

    return propose


def lqr_catch(
    system: Any,
    states: np.ndarray,
    targets: np.ndarray,
    plans: np.ndarray,
    dt: np.ndarray,
    radius: float,
    _systems: dict[int, Any] | None = None,
) -> np.ndarray:
    """``plans (B, K, m)`` (plant grid, step ``dt (B,)``, from ``states``) with the closed-loop LQR of
    the linearisation (:func:`~mlcore_trc_control.nonlinear.expert.lqr_on_linearisation`, over the
    steps left) in place of each plan's controls from the first simulated state within ``radius`` of
    the target on; plans that never get there are returned unchanged."""
    import attrs

    from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation

    systems = {} if _systems is None else _systems
    steps = plans.shape[1]
    x = np.asarray(states, dtype=np.float64)
    arrival = np.full(len(x), -1)
    visited = []
    for k in range(steps):
        with np.errstate(invalid="ignore"):
            near = (arrival < 0) & (np.linalg.norm(x - targets, axis=1) <= radius)
        arrival[near] = k
        visited.append(x)
        x = plant_step(system, x, plans[:, k], dt)
    out = np.array(plans, copy=True)
    for k in np.unique(arrival[arrival >= 0]).tolist():
        rows = np.flatnonzero(arrival == k)
        left = steps - k
        if left not in systems:  # the system on the steps left (one per count, reused)
            systems[left] = attrs.evolve(system, num_steps=left)
        lqr = lqr_on_linearisation(systems[left], visited[k][rows], targets[rows], left * dt[rows])
        out[rows, k:] = lqr.controls
    return out


def _best(cost: np.ndarray, error: np.ndarray, margin: float) -> np.ndarray:
    """Index ``(B,)`` of the best outcome along axis 0 of ``cost``/``error`` ``(C, B)``: landing
    (error <= margin) first and among those the lowest cost; if none lands, the smallest error.
    Ties go to the lower index."""
    score = np.where(error <= margin, cost, np.inf)
    return np.where(np.isfinite(score).any(axis=0), np.argmin(score, axis=0), np.argmin(error, axis=0))


def simulated_outcome(
    system: Any, states: np.ndarray, targets: np.ndarray, controls: np.ndarray, dt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cost-to-go ``J`` and terminal error ``||x_K - r||`` ``(B,)`` of plant-grid controls
    ``(B, K, m)`` from ``states`` (step ``dt (B,)``); ``inf`` where the simulation diverges."""
    x = np.asarray(states, dtype=np.float64)
    trajectory = [x]
    for k in range(controls.shape[1]):
        x = plant_step(system, x, controls[:, k], dt)
        trajectory.append(x)
    with np.errstate(over="ignore", invalid="ignore"):
        cost = system.cost(np.stack(trajectory, axis=1), controls, targets)
        error = np.linalg.norm(trajectory[-1] - targets, axis=1)
    bad = ~(np.isfinite(cost) & np.isfinite(error))
    return np.where(bad, np.inf, cost), np.where(bad, np.inf, error)


class SelectingPlanner:
    """A closed-loop planner that commits to the best of its proposer's candidates and its own
    previous tail, by simulated outcome (see the module docstring).

    Args:
        system: the plant model used for the simulation (its ``step``, ``cost``, ``control_limit``).
        proposer: candidate plans ``(C, B, K, m)`` per call (:func:`network_proposer`).
        margin: predicted terminal errors up to this count as landing (rank by ``J``); half the
            evaluation's success threshold by default, so a candidate that lands only on paper
            (model error, noise) is not preferred to a cheaper safe one.
        keep_previous: add the previous plan's unexecuted tail as a candidate (the monotone
            guarantee); ``False`` ranks only the new proposals.
        polish_iterations: iLQR iterations from the committed plan at every re-plan, kept where
            they rank better (0 = pure selection; nonlinear systems only).
        catch: hand every new candidate to the LQR of the linearisation from its first simulated
            state within this distance of the target (:func:`lqr_catch`; 0 = off; nonlinear systems).

    ``counts`` tallies how often a new proposal (``switched``) or the kept tail (``kept``) won,
    and how often the iLQR polish was kept (``polished``).
    """

    def __init__(
        self,
        system: Any,
        proposer: Proposer,
        *,
        margin: float = 0.05,
        keep_previous: bool = True,
        polish_iterations: int = 0,
        catch: float = 0.0,
    ) -> None:
        if not catch >= 0:
            raise ConfigError(f"closed_loop.select_catch={catch} must be >= 0")
        if catch > 0 and getattr(system, "kind", "linear") != "nonlinear":
            raise ConfigError(
                f"closed_loop.select_catch={catch}: the LQR catch is for nonlinear systems, "
                f"not {getattr(system, 'name', 'this one')!r}"
            )
        if polish_iterations < 0:
            raise ConfigError(f"closed_loop.select_polish_iterations={polish_iterations} must be >= 0")
        if polish_iterations > 0 and getattr(system, "kind", "linear") != "nonlinear":
            raise ConfigError(
                f"closed_loop.select_polish_iterations={polish_iterations}: the iLQR polish is for nonlinear "
                f"systems, not {getattr(system, 'name', 'this one')!r}"
            )
        self.system = system
        self.proposer = proposer
        self.margin = margin
        self.keep_previous = keep_previous
        self.polish_iterations = polish_iterations
        self.catch = float(catch)
        self._committed: np.ndarray | None = None
        self._systems: dict[int, Any] = {}
        self.counts = {"switched": 0, "kept": 0, "polished": 0}

    def reset(self) -> None:
        """Forget the committed plans and the tallies (a new run)."""
        self._committed = None
        self.counts = {"switched": 0, "kept": 0, "polished": 0}

    def _polish(
        self,
        states: np.ndarray,
        targets: np.ndarray,
        horizons: np.ndarray,
        plan: np.ndarray,
        cost: np.ndarray,
        error: np.ndarray,
    ) -> np.ndarray:
        """``polish_iterations`` of iLQR from ``plan`` (outcome ``cost``, ``error``), kept where it ranks better."""
        import attrs

        from mlcore_trc_control.nonlinear.ilqr import ilqr

        steps = plan.shape[1]
        if steps not in self._systems:  # the system on the remaining steps (one per count, reused)
            self._systems[steps] = attrs.evolve(self.system, num_steps=steps)
        refined = ilqr(
            self._systems[steps], states, targets, horizons, init=plan, max_iter=self.polish_iterations
        ).controls
        new_cost, new_error = simulated_outcome(self.system, states, targets, refined, horizons / steps)
        # the incumbent first: the polish must rank strictly better to replace it
        better = _best(np.stack([cost, new_cost]), np.stack([error, new_error]), self.margin) == 1
        self.counts["polished"] += int(better.sum())
        return np.where(better[:, None, None], refined, plan)

    def __call__(
        self, states: np.ndarray, targets: np.ndarray, horizons: np.ndarray, steps: int | None = None
    ) -> np.ndarray:
        """The committed plans ``(B, steps, m)`` on the plant's grid ``horizons / steps``."""
        steps = int(steps or self.system.num_steps)
        dt = np.asarray(horizons, dtype=np.float64) / steps
        proposals = self.proposer(states, targets, horizons)
        plan_dt = horizons / proposals.shape[2]
        candidates = [
            clip_to_box(self.system, np.stack([resample_plan(p, plan_dt, j * dt, dt) for j in range(steps)], axis=1))
            for p in proposals
        ]
        if self.catch > 0:
            candidates = [lqr_catch(self.system, states, targets, c, dt, self.catch, self._systems) for c in candidates]
        previous = self._committed
        keep = False
        if self.keep_previous and previous is not None:
            keep = previous.shape[0] == states.shape[0] and previous.shape[1] >= steps
            if keep:
                candidates.append(previous[:, previous.shape[1] - steps :])
        outcomes = [simulated_outcome(self.system, states, targets, c, dt) for c in candidates]
        cost = np.stack([o[0] for o in outcomes])  # (C, B)
        error = np.stack([o[1] for o in outcomes])
        best = _best(cost, error, self.margin)
        chosen = np.stack([candidates[c][b] for b, c in enumerate(best)])
        if keep:
            kept = int((best == len(candidates) - 1).sum())
            self.counts["kept"] += kept
            self.counts["switched"] += len(best) - kept
        if self.polish_iterations > 0:
            pick = np.arange(len(best))
            chosen = self._polish(states, targets, horizons, chosen, cost[best, pick], error[best, pick])
        self._committed = chosen
        return chosen
