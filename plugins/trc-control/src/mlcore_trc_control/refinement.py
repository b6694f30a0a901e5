"""Learned plans as warm starts of iLQR: what a policy is worth to a trajectory optimiser.

A policy's open-loop plan can miss the target (on the pendulum no learned policy holds the
upright), yet still be a good *initial guess*: a local optimiser started in the right basin
(the right swing direction, roughly the right timing) polishes it to the optimum in a few
iterations, where one started from zeros or from the LQR on the linearisation may converge to
a costlier local optimum or need many more iterations. This is amortised optimisation with
refinement — the network proposes, :func:`~mlcore_trc_control.nonlinear.ilqr.ilqr` (the same
RK4 dynamics and stated cost the expert and the evaluation use) disposes.

:func:`refinement_table` runs iLQR with a budget of ``K`` iterations from every warm start on the
same test problems and reports, per (warm start, ``K``): success, terminal error, the cost gap
against the expert and the optimiser's wall time per problem. ``K = 0`` is the warm start itself.
The pipeline runs it for nonlinear systems when ``comparison.refine_iterations`` is set
(``comparison_results.json`` key ``refinement``, plot ``plots/refinement.png``).

Example::

    from mlcore_trc_control.refinement import refinement_table

    rows = refinement_table(test_problems, {"TRC": trc_controls, "zeros": None}, [0, 1, 5, 20])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcore_trc_control.evaluation import rollout_metrics

if TYPE_CHECKING:
    from mlcore_trc_control.data import LQRProblemSet

log = logging.getLogger(__name__)

__all__ = ["LQR_WARM_START", "plot_refinement", "refinement_table"]

#: the warm-start name meaning iLQR's own default (the closed-loop LQR on the linearisation)
LQR_WARM_START = "LQR on the linearisation"


def refinement_table(
    problems: LQRProblemSet,
    warm_starts: Mapping[str, np.ndarray | None],
    iterations: Sequence[int],
    *,
    threshold: float = 0.1,
) -> list[dict[str, Any]]:
    """Rows ``{warm_start, iterations, success_rate, mean/median_terminal_error, mean_cost,
    cost_gap, ms_per_problem, converged}`` for iLQR run ``K`` iterations (each of ``iterations``)
    from every warm start ``(M, N, m)`` controls of ``problems`` (``None`` = iLQR's default start,
    the LQR on the linearisation). Every problem set must be of a nonlinear system."""
    from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation
    from mlcore_trc_control.nonlinear.ilqr import ilqr
    from mlcore_trc_control.nonlinear.systems import NonlinearSystem

    system = problems.system
    if not isinstance(system, NonlinearSystem):
        raise ValueError(f"iLQR refinement needs a nonlinear system, got {type(system).__name__}")
    oracle_cost = float(problems.optimal_costs.mean())
    x0, targets, horizons = problems.initial_states, problems.target_states, problems.horizons()
    limit = system.control_limit if system.control_limit > 0 else np.inf
    rows: list[dict[str, Any]] = []
    for name, start in warm_starts.items():
        if start is None:
            start = lqr_on_linearisation(system, x0, targets, horizons).controls
        start = np.clip(np.asarray(start, dtype=np.float64), -limit, limit)
        for k in sorted(set(int(i) for i in iterations)):
            if k == 0:
                controls, seconds, converged = start, 0.0, 0.0
            else:
                sol = ilqr(system, x0, targets, horizons, init=start, max_iter=k)
                controls, seconds = sol.controls, sol.seconds
                converged = float(np.mean([s == "converged" for s in sol.status]))
            m = rollout_metrics(system, problems, controls, threshold)
            rows.append(
                {
                    "warm_start": name,
                    "iterations": k,
                    "success_rate": m["success_rate"],
                    "mean_terminal_error": m["mean_terminal_error"],
                    "median_terminal_error": m["median_terminal_error"],
                    "mean_cost": m["lqr_cost"],
                    "cost_gap": m["lqr_cost"] / oracle_cost - 1.0,
                    "ms_per_problem": 1000.0 * seconds / len(problems),
                    "converged": converged,
                }
            )
            log.info(
                "iLQR from %s, %d iterations: success %.3f, cost gap %+.4f",
                name,
                k,
                m["success_rate"],
                rows[-1]["cost_gap"],
            )
    return rows


def plot_refinement(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Success rate and cost gap against the iLQR iteration budget, one line per warm start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["warm_start"] for r in rows):
        mine = [r for r in rows if r["warm_start"] == name]
        ks = [r["iterations"] for r in mine]
        left.plot(ks, [r["success_rate"] for r in mine], marker="o", label=name)
        right.plot(ks, [max(r["cost_gap"], 1e-6) for r in mine], marker="o", label=name)
    left.set(xlabel="iLQR iterations", ylabel="success rate", title="success vs iteration budget", ylim=(-0.02, 1.02))
    right.set(xlabel="iLQR iterations", ylabel="cost gap vs expert", title="cost gap vs iteration budget")
    right.set_yscale("log")
    for ax in (left, right):
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=-0.2)  # symlog would otherwise show an empty negative decade
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
