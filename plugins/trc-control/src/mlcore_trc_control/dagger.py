"""DAgger for closed-loop deployment: train on the states the learner's own closed loop visits.

A policy trained on the expert's initial states only sees, once deployed in closed loop, the
states its own (imperfect) controls lead to — a distribution it was never trained on. DAgger
(Ross, Gordon & Bagnell 2011) closes that gap; one round here is::

    run the learner in closed loop (closed_loop_rollout) on `problems_per_round` training problems
    sample `states_per_round` visited states x_k (k uniform in 1..N-1) with their target and
        the horizon the closed loop would plan with there (T, or T - t_k for `shrinking`),
        skipping states beyond 3x the training set's state range
    relabel each with the expert (multiple shooting from x_k, also started from the learner's plan
        and from the sampled problem's own label from t_k on, its nodes on the label's trajectory
        — see `label_tails`; labels = its optimal plan; where
        x_N = r is out of reach in the time left, its optimum of the stated cost alone — what the
        expert itself does in closed loop; labels IPOPT did not converge on are dropped)
    aggregate them into the training set and fine-tune the learner on all of it

:func:`relabel` is the expert step, :func:`concat_problem_sets` the aggregation,
:func:`fine_tune` a plain Adam loop over the model's own loss (``compute_loss`` for TRC,
control MSE otherwise), :func:`dagger` the rounds. ``history`` records, per round, the
closed-loop success on the sampled problems *before* that round's update, the labels added and
the seconds taken.

Example::

    from mlcore_trc_control.dagger import DaggerConfig, dagger

    model, history = dagger(model, train_problems, DaggerConfig(rounds=3))
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlcore.config import non_negative, one_of, positive
from mlcore_trc_control.closed_loop import HORIZON_MODES, closed_loop_rollout, policy_planner

if TYPE_CHECKING:
    from torch import nn

    from mlcore_trc_control.data import LQRProblemSet
    from mlcore_trc_control.nonlinear.systems import NonlinearSystem

log = logging.getLogger(__name__)

__all__ = ["DaggerConfig", "concat_problem_sets", "dagger", "fine_tune", "label_tails", "relabel", "visited_states"]


@attrs.define
class DaggerConfig:
    """DAgger settings (the ``closed_loop.dagger_*`` keys of the ``trc`` pipeline).

    Attributes:
        rounds: aggregation rounds (0 = none).
        problems_per_round: training problems run in closed loop per round.
        states_per_round: visited states relabelled by the expert per round.
        epochs: fine-tuning epochs over the aggregated set after each round.
        lr: fine-tuning learning rate (Adam, cosine over each round's epochs).
        batch_size: fine-tuning batch size.
        replan_every, horizon: the closed loop's (see :mod:`mlcore_trc_control.closed_loop`).
        neighbours: the expert's neighbour restarts among each round's visited states (0 = its
            pass in order only: each restart is one more NLP solve per state and start).
        learner_start: the learner's own plan from each visited state is one more warm start of
            the expert (one more NLP solve per state; the cheapest converged solution is the label,
            so a label can only get cheaper — and it stays on the learner's route where that is
            the cheaper one, rather than jumping between routes).
        label_start: the sampled problem's own expert label from the visited state's time on is
            one more start, its nodes initialised on the label's trajectory (:func:`label_tails`;
            one more NLP solve per state). Near that route the expert then finds its continuation,
            where starts rolled out from the visited state leave it for a costlier one (on the
            pendulum: a swing-up with one more pump).
        seed: seed of the sampling and the shuffling.
    """

    rounds: int = attrs.field(default=2, validator=non_negative)
    problems_per_round: int = attrs.field(default=100, validator=positive)
    states_per_round: int = attrs.field(default=200, validator=positive)
    epochs: int = attrs.field(default=10, validator=positive)
    lr: float = attrs.field(default=3e-4, validator=positive)
    batch_size: int = attrs.field(default=64, validator=positive)
    replan_every: int = attrs.field(default=1, validator=positive)
    horizon: str = attrs.field(default="shrinking", validator=one_of(*HORIZON_MODES))
    neighbours: int = attrs.field(default=0, validator=non_negative)
    learner_start: bool = True
    label_start: bool = True
    seed: int = 0


def visited_states(
    states: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray,
    count: int,
    horizon: str,
    rng: np.random.Generator,
    bound: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` states sampled from closed-loop trajectories ``(M, N+1, n)`` (steps ``1..N-1``),
    with their targets and planning horizons; diverged states, and states with ``|x_i| > bound_i``
    (if given: far outside anything the task asks for, where an expert label teaches nothing), are
    skipped."""
    rows, cols = _visited_index(states, count, rng, bound)
    return _at(states, targets, horizons, horizon, rows, cols)


def _visited_index(
    states: np.ndarray, count: int, rng: np.random.Generator, bound: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(trajectory, step)`` indices of the states :func:`visited_states` samples."""
    steps = states.shape[1] - 1
    rows = rng.integers(0, states.shape[0], 4 * count)
    cols = rng.integers(1, steps, 4 * count)
    x = states[rows, cols]
    with np.errstate(invalid="ignore"):
        keep = np.all(np.isfinite(x), axis=1) & (np.abs(x).max(axis=1) < 1e3)
        if bound is not None:
            keep &= np.all(np.abs(x) <= bound, axis=1)
    return rows[keep][:count], cols[keep][:count]


def _at(
    states: np.ndarray, targets: np.ndarray, horizons: np.ndarray, horizon: str, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps = states.shape[1] - 1
    t = horizons[rows] if horizon == "receding" else horizons[rows] * (1 - cols / steps)
    return states[rows, cols], targets[rows], t


def label_tails(
    problems: LQRProblemSet, rows: np.ndarray, cols: np.ndarray, horizons: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Problem ``rows[i]``'s expert label from its step ``cols[i]`` on, on the grid of a new plan over
    ``horizons[i]`` with the system's ``N`` steps: ``(controls (M, N, m), states (M, N + 1, n))`` —
    the controls' time averages over each new step and the label's states interpolated at the new
    nodes; past the label's end its last control and state hold (the ``receding`` horizon)."""
    from mlcore_trc_control.closed_loop import resample_plan

    steps = problems.system.num_steps
    old_dt = problems.horizons()[rows] / steps
    new_dt = np.asarray(horizons, dtype=np.float64) / steps
    controls = np.zeros((len(rows), steps, problems.system.m))
    states = np.zeros((len(rows), steps + 1, problems.system.n))
    for i, (b, k) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        plan = np.repeat(problems.control_sequences[b, k:][None], steps, axis=0)  # one row per new step
        starts = np.arange(steps) * new_dt[i]
        controls[i] = resample_plan(plan, np.full(steps, old_dt[i]), starts, np.full(steps, new_dt[i]))
        path = problems.state_trajectories[b, k:]
        when = np.arange(len(path)) * old_dt[i]
        nodes = np.arange(steps + 1) * new_dt[i]
        states[i] = np.stack([np.interp(nodes, when, path[:, d]) for d in range(path.shape[1])], axis=1)
    return controls, states


def relabel(
    system: NonlinearSystem,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray,
    *,
    neighbours: int = 0,
    warm_starts: np.ndarray | None = None,
    trajectory_starts: tuple[np.ndarray, np.ndarray] | None = None,
) -> LQRProblemSet:
    """Expert labels (multiple shooting) for the problems ``(x0, targets, horizons)``; ``neighbours > 0``
    adds the expert's neighbour restarts among these problems, ``warm_starts`` ``(M, N, m)`` one
    more start per problem, ``trajectory_starts`` (controls, states) one more with its nodes on
    those states (the cheapest converged solution is kept either way)."""
    from mlcore_trc_control.data import LQRProblemSet
    from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation, multiple_shooting

    lqr = lqr_on_linearisation(system, x0, targets, horizons)
    expert = multiple_shooting(
        system,
        x0,
        targets,
        horizons,
        lqr=lqr,
        neighbours=neighbours,
        warm_starts=warm_starts,
        trajectory_starts=trajectory_starts,
    )
    return LQRProblemSet(
        system=system,
        initial_states=x0,
        target_states=targets,
        control_sequences=expert.controls,
        state_trajectories=expert.states,
        optimal_costs=expert.costs,
        lqr_control_sequences=lqr.controls,
        lqr_costs=lqr.costs,
        lqr_terminal_errors=lqr.terminal_errors,
        metadata={"expert": "optimal", "expert_reason": "DAgger relabel (multiple shooting)", "status": expert.status},
        time_horizons=np.asarray(horizons, dtype=np.float64),
    )


def concat_problem_sets(first: LQRProblemSet, second: LQRProblemSet) -> LQRProblemSet:
    """The problems of both sets (same system), with per-problem horizons."""
    from mlcore_trc_control.data import ARRAY_KEYS

    arrays: dict[str, Any] = {k: np.concatenate([getattr(first, k), getattr(second, k)]) for k in ARRAY_KEYS}
    horizons = np.concatenate([first.horizons(), second.horizons()])
    return attrs.evolve(first, **arrays, time_horizons=horizons)


def fine_tune(
    model: nn.Module, problems: LQRProblemSet, *, epochs: int, lr: float, batch_size: int, seed: int = 0
) -> list[float]:
    """Adam (cosine schedule) on the model's own loss over ``problems``; the mean loss per epoch."""
    import torch
    from torch import nn as tnn

    x, y = problems.tensors()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batches = max(1, -(-x.shape[0] // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * batches))
    gen = torch.Generator().manual_seed(seed)
    compute_loss = getattr(model, "compute_loss", None)
    device = next(model.parameters()).device
    losses = []
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        total = 0.0
        for i in range(0, x.shape[0], batch_size):
            idx = perm[i : i + batch_size]
            batch = (x[idx].to(device), y[idx].to(device))
            if callable(compute_loss):
                loss = compute_loss(batch)[0]
            else:
                loss = tnn.functional.mse_loss(model(batch[0]), batch[1])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / x.shape[0])
    model.eval()
    return losses


def dagger(
    model: nn.Module,
    train: LQRProblemSet,
    config: DaggerConfig | None = None,
    *,
    clip_to: float = 0.0,
    device: Any = "cpu",
    planner: Any = None,
) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Fine-tune ``model`` (in place) by ``config.rounds`` DAgger rounds on ``train``'s system;
    returns the model and the per-round history (see the module docstring).

    ``planner`` replaces the plain re-planning policy in the rounds' closed loops: a planner built on
    ``model`` itself (it is tuned in place), e.g. a
    :func:`~mlcore_trc_control.selection.selecting_planner`, so that DAgger samples the states the
    deployed scheme visits; its ``reset()``, if any, runs before every round."""
    cfg = config or DaggerConfig()
    system = train.system
    rng = np.random.default_rng(cfg.seed)
    data = train
    history: list[dict[str, Any]] = []
    planner = planner if planner is not None else policy_planner(model, clip_to=clip_to, device=device)
    # visited states beyond 3x the task's own state range are not relabelled (see visited_states)
    bound = 3.0 * np.maximum(np.abs(train.initial_states).max(axis=0), np.abs(train.target_states).max(axis=0))
    for round_index in range(cfg.rounds):
        start = time.perf_counter()
        pick = rng.choice(len(train), min(cfg.problems_per_round, len(train)), replace=False)
        sample = train.subset(np.sort(pick))
        reset = getattr(planner, "reset", None)
        if callable(reset):
            reset()
        run = closed_loop_rollout(
            system,
            sample.initial_states,
            sample.target_states,
            sample.horizons(),
            planner,
            replan_every=cfg.replan_every,
            horizon=cfg.horizon,
            seed=cfg.seed + round_index,
        )
        rows, cols = _visited_index(run.states, cfg.states_per_round, rng, bound)
        x, r, t = _at(run.states, run.targets, sample.horizons(), cfg.horizon, rows, cols)
        starts = None
        if cfg.learner_start and len(x):
            if callable(reset):  # a planner with memory plans these states afresh
                reset()
            starts = planner(x, r, t, system.num_steps)
        tails = label_tails(sample, rows, cols, t) if cfg.label_start and len(x) else None
        labels = relabel(system, x, r, t, neighbours=cfg.neighbours, warm_starts=starts, trajectory_starts=tails)  # type: ignore[arg-type]
        status = labels.metadata["status"]
        keep = np.array([s != "failed" for s in status])
        if keep.any():
            data = concat_problem_sets(data, labels.subset(np.flatnonzero(keep)))
        losses = fine_tune(
            model, data, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed + round_index
        )
        row = {
            "round": round_index + 1,
            "closed_loop_success_before": run.summary()["success_rate"],
            "closed_loop_cost_before": run.summary()["mean_cost"],
            "labels_added": int(keep.sum()),
            "labels_dropped": int((~keep).sum()),
            "training_problems": len(data),
            "final_loss": losses[-1],
            "seconds": time.perf_counter() - start,
        }
        log.info(
            "DAgger round %d: closed-loop success %.1f%% before, +%d labels (%d total), loss %.4g, %.1fs",
            row["round"],
            100 * row["closed_loop_success_before"],
            row["labels_added"],
            row["training_problems"],
            row["final_loss"],
            row["seconds"],
        )
        history.append(row)
    return model, history
