"""The ``trc`` pipeline's closed-loop stage: every policy open- and closed-loop on the same problems.

For the first ``closed_loop.problems`` test problems, each policy — TRC, the least-squares
linear policy (clipped to the box), the same-size MLP (clipped), and the expert (multiple
shooting for a nonlinear system; its stored labels open-loop, :class:`ExpertPlanner` closed-loop)
— is run open-loop (its plan from ``x_0``, applied blindly) and in closed loop (re-planning every
``replan_every`` steps, :func:`~mlcore_trc_control.closed_loop.closed_loop_rollout`), at every
actuation-noise level of ``noise_levels`` (the same noise draws for every policy). With
``dagger_rounds > 0``, copies of TRC and of the MLP are fine-tuned by DAgger
(:mod:`mlcore_trc_control.dagger`) and added as ``+ DAgger`` rows; their weights are saved to
``closed_loop/<name>_dagger.pt``. With ``finetune_steps > 0``, copies of TRC and of the MLP
(the DAgger-tuned ones when DAgger ran) are fine-tuned on the closed-loop cost through the
differentiable simulator (:mod:`mlcore_trc_control.closed_loop_training`) and added as
``+ closed-loop fine-tuning`` rows (weights ``closed_loop/<name>_finetuned.pt``). With
``select_cycles > 0``, every learned policy (and the re-planned LQR) also runs with plan selection
by simulated outcome (:mod:`mlcore_trc_control.selection`) as ``+ plan selection`` rows. Cost gaps
are against the expert's open-loop optimum on the same problems. Everything goes to
``closed_loop_results.json``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlcore.config import in_range, non_negative, one_of, positive
from mlcore.io import atomic_write
from mlcore_trc_control.closed_loop import (
    HORIZON_MODES,
    ExpertPlanner,
    Planner,
    closed_loop_rollout,
    open_loop_rollout,
)
from mlcore_trc_control.selection import SelectingPlanner

if TYPE_CHECKING:
    from mlcore_trc_control.data import LQRProblemSet

log = logging.getLogger(__name__)

__all__ = ["ClosedLoopConfig", "closed_loop_table", "run_dagger", "run_finetune"]


def _noise_levels(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if not value or any(float(v) < 0 for v in value):
        raise ValueError(f"{attribute.name}={value!r} must be a non-empty list of numbers >= 0")


def _non_negative_list(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if any(float(v) < 0 for v in value):
        raise ValueError(f"{attribute.name}={value!r} must be numbers >= 0")


@attrs.define
class ClosedLoopConfig:
    """Config of the closed-loop stage (section ``closed_loop`` of the ``trc`` pipeline).

    Attributes:
        enabled: run the stage (off by default: the expert re-solves its NLP at every re-plan).
        problems: test problems run (the first ones of the test split).
        replan_every: plant steps between re-plans (1 = every step).
        horizon: ``receding`` (plan over ``T`` from every state) or ``shrinking`` (over ``T - t``).
        noise_levels: actuation-noise standard deviations (Gaussian, clipped to the box).
        expert: include the expert in closed loop (one NLP solve per problem and re-plan).
        dagger_rounds, dagger_problems, dagger_states, dagger_epochs, dagger_lr, dagger_neighbours,
            dagger_learner_start, dagger_label_start: DAgger
            fine-tuning of copies of TRC and the MLP (0 rounds = none; see
            :class:`~mlcore_trc_control.dagger.DaggerConfig`); nonlinear systems only.
        finetune_steps, finetune_batch_size, finetune_lr, finetune_terminal_weight,
            finetune_grad_clip, finetune_curriculum, finetune_eval_problems: closed-loop fine-tuning of copies of TRC
            and the MLP through the differentiable simulator (0 steps = none; see
            :class:`~mlcore_trc_control.closed_loop_training.FinetuneConfig`); nonlinear systems only.
        select_cycles: with ``> 0``, every network also runs with plan selection by simulated
            outcome (:mod:`mlcore_trc_control.selection`): TRC proposes its answers after outer
            cycles ``1..select_cycles``, the MLP its one plan, each beside its kept previous tail
            (0 = off; needs the ``shrinking`` horizon). With it on a nonlinear system, the
            re-planned LQR of the linearisation runs the same way, as the classical comparison.
        select_polish_iterations: iLQR iterations from the selected plan at every re-plan, kept
            where they rank better (0 = pure selection; nonlinear systems only).
        select_with_lqr: add the re-planned LQR of the linearisation to every policy's candidates
            (nonlinear systems).
        select_jitter: one offset per state; the networks are also asked from ``x ± d_i e_i``
            (see :func:`~mlcore_trc_control.selection.network_proposer`; empty = off).
        select_catch: hand every candidate to the LQR of the linearisation from its first
            simulated state within this distance of the target (see
            :func:`~mlcore_trc_control.selection.lqr_catch`; 0 = off; nonlinear systems).
        dagger_with_selection: DAgger's closed loops run the networks with plan selection (the
            ``select_*`` settings; needs ``select_cycles > 0``), so the relabelled states are the
            ones the deployed scheme visits.
        seed: seed of the noise draws, of DAgger's sampling and of the fine-tuning batches.
    """

    enabled: bool = False
    problems: int = attrs.field(default=100, validator=positive)
    replan_every: int = attrs.field(default=1, validator=positive)
    horizon: str = attrs.field(default="shrinking", validator=one_of(*HORIZON_MODES))
    noise_levels: list[float] = attrs.field(factory=lambda: [0.0], validator=_noise_levels)
    expert: bool = True
    dagger_rounds: int = attrs.field(default=0, validator=non_negative)
    dagger_problems: int = attrs.field(default=100, validator=positive)
    dagger_states: int = attrs.field(default=200, validator=positive)
    dagger_epochs: int = attrs.field(default=10, validator=positive)
    dagger_lr: float = attrs.field(default=3e-4, validator=positive)
    dagger_neighbours: int = attrs.field(default=0, validator=non_negative)
    dagger_learner_start: bool = True
    dagger_label_start: bool = True
    finetune_steps: int = attrs.field(default=0, validator=non_negative)
    finetune_batch_size: int = attrs.field(default=32, validator=positive)
    finetune_lr: float = attrs.field(default=1e-4, validator=positive)
    finetune_terminal_weight: float = attrs.field(default=100.0, validator=non_negative)
    finetune_grad_clip: float = attrs.field(default=1.0, validator=non_negative)
    finetune_curriculum: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0))
    finetune_eval_problems: int = attrs.field(default=32, validator=non_negative)
    select_cycles: int = attrs.field(default=0, validator=non_negative)
    select_polish_iterations: int = attrs.field(default=0, validator=non_negative)
    select_with_lqr: bool = False
    select_jitter: list[float] = attrs.field(factory=list, validator=_non_negative_list)
    select_catch: float = attrs.field(default=0.0, validator=non_negative)
    dagger_with_selection: bool = False
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if self.select_cycles > 0 and self.horizon != "shrinking":
            raise ValueError(
                f"select_cycles={self.select_cycles} needs horizon='shrinking' (the selected plans are "
                f"tails on the plant's grid), got horizon={self.horizon!r}"
            )
        if self.dagger_with_selection and self.select_cycles == 0:
            raise ValueError("dagger_with_selection=true needs select_cycles > 0 (the selection DAgger runs with)")


def _row(
    name: str, mode: str, noise: float, result: Any, reference_cost: float, threshold: float, **extra: Any
) -> dict[str, Any]:
    summary = result.summary(threshold, reference_cost)
    return {
        "method": name,
        "loop": mode,
        "control_noise": noise,
        "success_rate": summary["success_rate"],
        "mean_terminal_error": summary["mean_terminal_error"],
        "median_terminal_error": summary["median_terminal_error"],
        "mean_cost": summary["mean_cost"],
        "cost_gap": summary["cost_gap"],
        "replans": int(summary["replans"]),
        "seconds": summary["seconds"],
        **extra,
    }


def closed_loop_table(
    problems: LQRProblemSet,
    policies: dict[str, tuple[Planner, np.ndarray | None]],
    config: ClosedLoopConfig,
    *,
    threshold: float = 0.1,
) -> list[dict[str, Any]]:
    """Open- and closed-loop rows for every ``name -> (planner, open-loop controls or None)``
    (``None``: the planner's plan from ``x_0``) at every noise level; plus the expert when
    ``config.expert`` (nonlinear systems)."""
    system = problems.system
    x0, targets, horizons = problems.initial_states, problems.target_states, problems.horizons()
    reference = float(problems.optimal_costs.mean())
    entries = dict(policies)
    if config.expert and getattr(system, "kind", "linear") == "nonlinear":
        expert = ExpertPlanner(system, initial=problems.control_sequences)  # type: ignore[arg-type]
        entries[f"expert ({problems.expert})"] = (expert, problems.control_sequences)
    rows: list[dict[str, Any]] = []
    for name, (planner, plan) in entries.items():
        if plan is None:
            plan = planner(x0, targets, horizons)
        for index, noise in enumerate(config.noise_levels):
            seed = config.seed + index
            opened = open_loop_rollout(system, x0, targets, horizons, plan, control_noise=noise, seed=seed)
            rows.append(_row(name, "open", noise, opened, reference, threshold))
            reset = getattr(planner, "reset", None)
            if callable(reset):  # planners with memory (the expert's warm starts, the selection's tail)
                reset()
            closed = closed_loop_rollout(
                system,
                x0,
                targets,
                horizons,
                planner,
                replan_every=config.replan_every,
                horizon=config.horizon,
                control_noise=noise,
                seed=seed,
            )
            extra: dict[str, Any] = {}
            if isinstance(planner, ExpertPlanner):
                extra["solver_status"] = dict(planner.status_counts)
            if isinstance(planner, SelectingPlanner):
                extra["selection"] = dict(planner.counts)
            rows.append(_row(name, "closed", noise, closed, reference, threshold, **extra))
            log.info(
                "%s, noise %g: open-loop success %.1f%% (cost gap %+.1f%%), closed-loop %.1f%% (%+.1f%%) in %.1fs",
                name,
                noise,
                100 * rows[-2]["success_rate"],
                100 * rows[-2]["cost_gap"],
                100 * rows[-1]["success_rate"],
                100 * rows[-1]["cost_gap"],
                closed.seconds,
            )
    return rows


def run_dagger(
    models: dict[str, Any],
    train: LQRProblemSet,
    config: ClosedLoopConfig,
    out_dir: Path,
    *,
    clip_to: float = 0.0,
    device: Any = "cpu",
    planner_for: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """DAgger-fine-tuned copies of ``models`` (name -> network); their histories; weights saved
    to ``out_dir/<slug>_dagger.pt``. ``planner_for(copy)`` builds the closed-loop planner DAgger
    runs each copy with (default: the copy re-planning on its own)."""
    from mlcore_trc_control.dagger import DaggerConfig, dagger

    cfg = DaggerConfig(
        rounds=config.dagger_rounds,
        problems_per_round=config.dagger_problems,
        states_per_round=config.dagger_states,
        epochs=config.dagger_epochs,
        lr=config.dagger_lr,
        neighbours=config.dagger_neighbours,
        learner_start=config.dagger_learner_start,
        label_start=config.dagger_label_start,
        replan_every=config.replan_every,
        horizon=config.horizon,
        seed=config.seed,
    )
    return _tune_copies(
        models,
        lambda m: dagger(
            m, train, cfg, clip_to=clip_to, device=device, planner=planner_for(m) if planner_for else None
        ),
        out_dir,
        "dagger",
        f"DAgger ({cfg.rounds} rounds)",
    )


def _tune_copies(
    models: dict[str, Any],
    tune: Callable[[Any], tuple[Any, list[dict[str, Any]]]],
    out_dir: Path,
    suffix: str,
    what: str,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """``tune`` a deep copy of each model; the tuned copies and their histories, weights saved to
    ``out_dir/<slug>_<suffix>.pt``."""
    tuned: dict[str, Any] = {}
    histories: dict[str, list[dict[str, Any]]] = {}
    for name, model in models.items():
        start = time.perf_counter()
        tuned[name], histories[name] = tune(copy.deepcopy(model))
        _save(tuned[name], out_dir / f"{name.split(' ')[0].lower()}_{suffix}.pt")
        log.info("%s of %s in %.1fs", what, name, time.perf_counter() - start)
    return tuned, histories


def _save(model: Any, path: Path) -> None:
    import torch

    state = model.state_dict()

    def write(f: Any) -> None:
        torch.save(state, f)

    atomic_write(path, write)


def run_finetune(
    models: dict[str, Any],
    train: LQRProblemSet,
    config: ClosedLoopConfig,
    out_dir: Path,
    *,
    clip_to: float = 0.0,
    device: Any = "cpu",
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Closed-loop fine-tuned copies of ``models`` (name -> network) and their histories; weights
    saved to ``out_dir/<slug>_finetuned.pt``."""
    from mlcore_trc_control.closed_loop_training import FinetuneConfig, closed_loop_finetune

    cfg = FinetuneConfig(
        steps=config.finetune_steps,
        batch_size=config.finetune_batch_size,
        lr=config.finetune_lr,
        replan_every=config.replan_every,
        terminal_weight=config.finetune_terminal_weight,
        grad_clip=config.finetune_grad_clip,
        curriculum=config.finetune_curriculum,
        eval_problems=config.finetune_eval_problems,
        seed=config.seed,
    )
    return _tune_copies(
        models,
        lambda m: (m, closed_loop_finetune(m, train, cfg, clip_to=clip_to, device=device)),
        out_dir,
        "finetuned",
        f"closed-loop fine-tuning ({cfg.steps} steps)",
    )
