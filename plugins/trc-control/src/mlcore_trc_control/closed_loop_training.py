"""Closed-loop fine-tuning through the differentiable simulator (analytic policy gradient).

Imitation with MSE fits the expert's controls; where the expert's answer jumps between two
modes (the pendulum swings up left *or* right first) it averages them into controls that do
neither. Here the policy is instead trained on what it is judged by: the closed loop of
:func:`~mlcore_trc_control.closed_loop.closed_loop_rollout` is run in torch — the network plans
from the measured state ``x_k`` with the time left ``T - t_k`` every ``replan_every`` plant steps,
each plant step applies the plan's time average over it (clipped to the box), one RK4 step of
:class:`~mlcore_trc_control.nonlinear.simulator.TorchSimulator` moves the plant — and the loss is
taken on the executed trajectory and back-propagated through the whole rollout::

    loss = mean_i J_i / mean_i J*_i - 1  +  terminal_weight * mean_i ||x_N,i - r_i||^2

``J`` is the stated cost of the executed trajectory and ``J*`` the expert's optimum of the same
problems: the first term is the batch's cost gap as the evaluation reports it (a per-problem
ratio ``J_i / J*_i`` was tried first: the pendulum's near-upright starts have ``J*`` hundreds of
times below a swing-up's, and their ratios drowned the rest); the terminal term stands in for
the expert's constraint ``x_N = r`` (in ``J`` alone the pendulum's ``Qf`` makes a 0.1 miss cost ~0.3 % of a
swing-up). A cost does not average two swing directions: the gradient moves the plan toward the
one the rollout is already nearer. Plans are never detached, so the gradient also reaches earlier
re-plans through the states they lead to (differentiable predictive control).

:func:`closed_loop_torch` is the differentiable rollout (it reproduces the NumPy closed loop),
:func:`closed_loop_loss` the loss, :func:`closed_loop_finetune` the Adam loop (gradient-norm
clipping, cosine schedule, minibatches of training problems, the best iterate by the loss on a
fixed held-out batch is kept; optionally a curriculum that starts the rollouts at the expert's
later re-plan points, :func:`expert_tails`). The pipeline runs it as ``closed_loop.finetune_*``.
Measured (docs/plugins/trc-control.md): on Van der Pol it takes TRC and the MLP from 0 % to 100 %
closed-loop success without expert relabels; on the pendulum swing-up it lowers the cost gap but
no policy succeeds.

Example::

    from mlcore_trc_control.closed_loop_training import FinetuneConfig, closed_loop_finetune

    history = closed_loop_finetune(model, train_problems, FinetuneConfig(steps=300), clip_to=4.0)
"""

from __future__ import annotations

import copy
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlcore.config import in_range, non_negative, positive

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlcore_trc_control.data import LQRProblemSet
    from mlcore_trc_control.nonlinear.simulator import TorchSimulator

log = logging.getLogger(__name__)

__all__ = [
    "FinetuneConfig",
    "closed_loop_finetune",
    "closed_loop_loss",
    "closed_loop_torch",
    "expert_tails",
    "plan_weights",
]


@attrs.define
class FinetuneConfig:
    """Closed-loop fine-tuning settings (the ``closed_loop.finetune_*`` keys of the ``trc`` pipeline).

    Attributes:
        steps: Adam steps (0 = none).
        batch_size: training problems per step.
        lr: peak learning rate (cosine to 0 over ``steps``).
        replan_every: plant steps between re-plans (use the deployment's).
        terminal_weight: weight of ``||x_N - r||^2`` beside the relative cost.
        grad_clip: maximum gradient norm (0 = no clipping).
        curriculum: share of ``steps`` over which the start of the rollouts moves from the end of
            the expert's trajectories (the last re-plan: short horizons, near the target) back to
            ``x_0``; each step starts every problem of its batch at one re-plan point ``k``
            (a multiple of ``replan_every`` drawn uniformly from the ones allowed so far) on the
            expert's trajectory, with the time left ``T - t_k`` (:func:`expert_tails`). 0 = every
            rollout from ``x_0``.
        eval_every: steps between evaluations of the held-out batch (the best iterate is kept).
        eval_problems: size of that held-out batch (taken from the end of the training problems,
            which are then not trained on).
        seed: seed of the minibatch sampling.
    """

    steps: int = attrs.field(default=0, validator=non_negative)
    batch_size: int = attrs.field(default=32, validator=positive)
    lr: float = attrs.field(default=1e-4, validator=positive)
    replan_every: int = attrs.field(default=1, validator=positive)
    terminal_weight: float = attrs.field(default=100.0, validator=non_negative)
    grad_clip: float = attrs.field(default=1.0, validator=non_negative)
    curriculum: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0))
    eval_every: int = attrs.field(default=25, validator=positive)
    eval_problems: int = attrs.field(default=32, validator=non_negative)
    seed: int = 0


def expert_tails(problems: LQRProblemSet, start: int) -> LQRProblemSet:
    """The tail problems from plant step ``start`` of the expert's trajectories: initial state
    ``x_start``, horizon ``T (1 - start / N)``, ``optimal_costs`` the expert's cost-to-go (its
    optimum by Bellman's principle), labels its remaining controls resampled onto ``N`` steps
    (the grid a network plans on). ``start = 0`` returns ``problems``."""
    if start == 0:
        return problems
    steps = problems.control_sequences.shape[1]
    if not 0 < start < steps:
        raise ValueError(f"start={start} must be in [0, {steps})")
    left = steps - start
    states = problems.state_trajectories[:, start:]
    controls = problems.control_sequences[:, start:]
    index = (np.arange(steps) * left) // steps
    return attrs.evolve(
        problems,
        initial_states=states[:, 0],
        control_sequences=controls[:, index],
        state_trajectories=states[:, np.append(index, left)],
        optimal_costs=problems.system.cost(states, controls, problems.target_states),
        time_horizons=problems.horizons() * (left / steps),
    )


def plan_weights(plan_steps: int, plan_dt: torch.Tensor, start: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """Weights ``(B, K)`` of a ``K``-step piecewise-constant plan (step ``plan_dt (B,)``) whose
    weighted sum is its time average over ``[start, start + dt]``; past its end the last control
    holds (torch twin of :func:`~mlcore_trc_control.closed_loop.resample_plan`)."""
    import torch

    edges = torch.arange(plan_steps + 1, dtype=plan_dt.dtype, device=plan_dt.device)[None, :] * plan_dt[:, None]
    edges[:, -1] = math.inf
    lo = torch.minimum(torch.maximum(edges[:, :-1], start[:, None]), (start + dt)[:, None])
    hi = torch.minimum(torch.maximum(edges[:, 1:], start[:, None]), (start + dt)[:, None])
    return (hi - lo) / dt[:, None]


def closed_loop_torch(
    policy: nn.Module,
    simulator: TorchSimulator,
    problems: torch.Tensor,
    *,
    num_steps: int,
    replan_every: int = 1,
    clip_to: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable shrinking-horizon closed loop: ``(states (B, N+1, n), applied controls (B, N, m))``.

    ``problems (B, 2n+1) = [x_0, r, T]``; every ``replan_every`` plant steps (``dt = T / N``) the
    policy plans from ``[x_k, r, T - t_k]``; each plant step applies the plan's time average over
    it; with ``clip_to > 0`` the plan is clamped to ``|u| <= clip_to`` first, as
    :func:`~mlcore_trc_control.closed_loop.policy_planner` does (then the average is inside the
    box too), so this is :func:`~mlcore_trc_control.closed_loop.closed_loop_rollout` in torch.
    """
    import torch

    from mlcore_trc_control.nonlinear.systems import rk4_step

    n = simulator.n
    x = problems[:, :n]
    targets = problems[:, n : 2 * n]
    horizons = problems[:, 2 * n]
    dt = horizons / num_steps
    states, applied = [x], []
    plan = plan_dt = None
    plan_start = 0
    for k in range(num_steps):
        if k % replan_every == 0:
            remaining = horizons - k * dt
            plan = policy(torch.cat([x, targets, remaining[:, None]], dim=1))  # (B, K, m)
            if clip_to > 0:  # as policy_planner(clip_to=...) clips the plan before it is resampled
                plan = plan.clamp(-clip_to, clip_to)
            plan_dt, plan_start = remaining / plan.shape[1], k
        assert plan is not None and plan_dt is not None
        with torch.no_grad():  # the weights depend on times only
            weights = plan_weights(plan.shape[1], plan_dt, (k - plan_start) * dt, dt)
        u = torch.einsum("bk,bkm->bm", weights, plan)
        applied.append(u)
        x = rk4_step(simulator._rhs, x, u, dt[:, None])
        states.append(x)
    return torch.stack(states, dim=1), torch.stack(applied, dim=1)


def closed_loop_loss(
    policy: nn.Module,
    simulator: TorchSimulator,
    problems: torch.Tensor,
    optimal_costs: torch.Tensor,
    *,
    num_steps: int,
    replan_every: int = 1,
    clip_to: float = 0.0,
    terminal_weight: float = 100.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The fine-tuning loss (module docstring) and its parts ``{relative_cost, terminal_error, success_rate}``."""
    import torch

    states, controls = closed_loop_torch(
        policy, simulator, problems, num_steps=num_steps, replan_every=replan_every, clip_to=clip_to
    )
    cost = simulator.cost(problems, controls, states)
    relative = cost.mean() / optimal_costs.mean().clamp_min(1e-6) - 1.0
    miss = ((states[:, -1] - problems[:, simulator.n : 2 * simulator.n]) ** 2).sum(dim=1)
    loss = relative + terminal_weight * miss.mean()
    with torch.no_grad():
        err = miss.sqrt()
        parts = {
            "relative_cost": float(relative),
            "terminal_error": float(err.mean()),
            "success_rate": float((err < 0.1).float().mean()),
        }
    return loss, parts


def closed_loop_finetune(
    model: nn.Module,
    problems: LQRProblemSet,
    config: FinetuneConfig | None = None,
    *,
    clip_to: float = 0.0,
    device: Any = "cpu",
) -> list[dict[str, Any]]:
    """Fine-tune ``model`` in place on the closed-loop loss over ``problems`` (a nonlinear system's
    training set, with the expert's ``optimal_costs``); keeps the iterate with the lowest held-out
    loss (the starting point included) and returns the evaluation history."""
    import torch

    from mlcore_trc_control.nonlinear.simulator import TorchSimulator

    cfg = config or FinetuneConfig()
    history: list[dict[str, Any]] = []
    if cfg.steps == 0:
        return history
    system = problems.system
    simulator = TorchSimulator(system).to(device)  # type: ignore[arg-type]
    steps = int(system.num_steps)
    held = min(cfg.eval_problems, max(0, len(problems) - cfg.batch_size))
    train_count = len(problems) - held
    starts = list(range(0, steps, cfg.replan_every))  # the re-plan points of the deployed closed loop
    tails = {}
    for k in starts:
        tail = expert_tails(problems, k)
        tails[k] = (
            torch.as_tensor(tail.problems(), dtype=torch.float32, device=device),
            torch.as_tensor(tail.optimal_costs, dtype=torch.float32, device=device),
        )
    eval_problems, eval_costs = (t[train_count:] for t in tails[0])
    kwargs: dict[str, Any] = {
        "replan_every": cfg.replan_every,
        "clip_to": clip_to,
        "terminal_weight": cfg.terminal_weight,
    }

    def evaluate(step: int, train_loss: float | None) -> dict[str, Any]:
        model.eval()
        with torch.no_grad():
            loss, parts = closed_loop_loss(model, simulator, eval_problems, eval_costs, num_steps=steps, **kwargs)
        return {"step": step, "train_loss": train_loss, "loss": float(loss), **parts}

    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)
    start = time.perf_counter()
    if held:
        history.append(evaluate(0, None))
        best, best_state = history[-1]["loss"], copy.deepcopy(model.state_dict())
    running: list[float] = []
    for step in range(1, cfg.steps + 1):
        model.train()
        # the curriculum: the earliest start allowed moves from the last re-plan point back to 0
        ramp = min(1.0, step / (cfg.curriculum * cfg.steps)) if cfg.curriculum > 0 else 1.0
        allowed = [k for k in starts if k >= round((1.0 - ramp) * starts[-1])]
        k = int(rng.choice(allowed))
        index = torch.as_tensor(rng.choice(train_count, min(cfg.batch_size, train_count), replace=False))
        inputs, costs = tails[k]
        loss, _ = closed_loop_loss(model, simulator, inputs[index], costs[index], num_steps=steps - k, **kwargs)
        opt.zero_grad()
        if torch.isfinite(loss):
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            running.append(float(loss.detach()))
        sched.step()
        if held and (step % cfg.eval_every == 0 or step == cfg.steps):
            row = evaluate(step, float(np.mean(running)) if running else None)
            row["seconds"] = time.perf_counter() - start
            running = []
            history.append(row)
            log.info(
                "closed-loop fine-tuning step %d: held-out loss %.4g, relative cost %+.3f, success %.1f%% (%.0fs)",
                step,
                row["loss"],
                row["relative_cost"],
                100 * row["success_rate"],
                row["seconds"],
            )
            if row["loss"] < best:
                best, best_state = row["loss"], copy.deepcopy(model.state_dict())
    if held:
        model.load_state_dict(best_state)
    model.eval()
    return history
