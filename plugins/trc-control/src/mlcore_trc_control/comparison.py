"""Comparisons for the ``trc`` pipeline: baselines, test-time cycle sweep and generalisation suite.

- :func:`baseline_table`: random controls vs TRC vs the LQR optimum (and the expert oracle when
  the data was labelled by the minimum-energy expert), one row each.
- :func:`cycle_sweep`: the same trained model run with 1..K outer cycles at test time.
- :func:`generalisation_suite`: fresh problem sets beyond the training distribution (larger
  initial deviations, larger target range, other horizons, initial states outside the training
  box), labelled by the same expert; reported as a table, whatever the numbers are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlcore.config import positive
from mlcore.errors import MlcoreError
from mlcore_trc_control.evaluation import predict_controls, random_controls, rollout_metrics

if TYPE_CHECKING:
    from torch import nn

    from mlcore_trc_control.data import LQRDataConfig, LQRProblemSet

log = logging.getLogger(__name__)

__all__ = [
    "ComparisonConfig",
    "baseline_table",
    "cycle_sweep",
    "generalisation_suite",
    "markdown_table",
    "plot_baselines",
    "plot_cycle_sweep",
]


def _cycles(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if not value or any(int(v) < 1 for v in value):
        raise ValueError(f"{attribute.name}={value!r} must be a non-empty list of positive integers")


@attrs.define
class ComparisonConfig:
    """Config of the comparison stage (section ``comparison`` of the ``trc`` pipeline).

    Attributes:
        enabled: run the comparison stage at all.
        sweep_cycles: outer-cycle counts of the test-time sweep.
        generalisation: run the generalisation suite.
        generalisation_samples: problems per generalisation scenario.
        seed: seed of the generalisation problem sets.
    """

    enabled: bool = True
    sweep_cycles: list[int] = attrs.field(factory=lambda: [1, 2, 3, 4, 6, 8], validator=_cycles)
    generalisation: bool = True
    generalisation_samples: int = attrs.field(default=500, validator=positive)
    seed: int = 2024


def baseline_table(
    model: nn.Module, problems: LQRProblemSet, *, device: Any = "cpu", threshold: float = 0.1, seed: int = 0
) -> list[dict[str, Any]]:
    """Rows for random controls, TRC, the LQR optimum and (if different) the expert oracle."""
    system = problems.system
    oracle_cost = float(problems.optimal_costs.mean())
    candidates: list[tuple[str, np.ndarray]] = [
        ("random", random_controls(system, problems, seed)),
        ("TRC", predict_controls(model, problems.problems(), device=device)),
        ("LQR optimum (stated cost)", problems.lqr_control_sequences),
    ]
    if problems.expert != "lqr":
        candidates.append((f"oracle ({problems.expert} expert)", problems.control_sequences))
    rows = []
    for name, controls in candidates:
        m = rollout_metrics(system, problems, controls, threshold)
        rows.append(
            {
                "method": name,
                "mean_terminal_error": m["mean_terminal_error"],
                "success_rate": m["success_rate"],
                "mean_cost": m["lqr_cost"],
                "cost_gap_vs_oracle": m["lqr_cost"] / oracle_cost - 1.0,
                "control_mse": m["control_mse"],
            }
        )
    return rows


def cycle_sweep(
    model: nn.Module, problems: LQRProblemSet, cycles: Sequence[int], *, device: Any = "cpu", threshold: float = 0.1
) -> list[dict[str, Any]]:
    """Error, success and cost gap of the model run with each number of outer cycles at test time."""
    trained = int(getattr(model, "num_outer_cycles", 0))
    oracle_cost = float(problems.optimal_costs.mean())
    rows = []
    for count in sorted({int(c) for c in cycles}):
        controls = predict_controls(model, problems.problems(), device=device, num_outer_cycles=count)
        m = rollout_metrics(problems.system, problems, controls, threshold)
        rows.append(
            {
                "outer_cycles": count,
                "trained_with": trained,
                "mean_terminal_error": m["mean_terminal_error"],
                "success_rate": m["success_rate"],
                "control_mse": m["control_mse"],
                "cost_gap": m["lqr_cost"] / oracle_cost - 1.0,
            }
        )
    return rows


def _scenarios(cfg: LQRDataConfig, n: int) -> list[tuple[str, dict[str, Any]]]:
    init, target = cfg.ranges(n)
    horizon = cfg.build_system().time_horizon

    def shell(rng: np.random.Generator, num: int) -> np.ndarray:
        # every coordinate between 1x and 1.5x the training half-width, random sign: outside the box
        mag = rng.uniform(1.0, 1.5, (num, n)) * init
        return mag * rng.choice([-1.0, 1.0], (num, n))

    return [
        ("in distribution (fresh sample)", {}),
        ("initial range x1.5", {"initial_range": init * 1.5}),
        ("initial range x2", {"initial_range": init * 2.0}),
        ("target range x1.5", {"target_range": target * 1.5}),
        (f"horizon {0.8 * horizon:g} s (x0.8)", {"time_horizon": 0.8 * horizon}),
        (f"horizon {1.2 * horizon:g} s (x1.2)", {"time_horizon": 1.2 * horizon}),
        ("initial states outside the training box (x1-1.5)", {"initial_sampler": shell}),
    ]


def generalisation_suite(
    model: nn.Module,
    data_config: LQRDataConfig,
    expert: str,
    *,
    num_samples: int = 500,
    seed: int = 2024,
    device: Any = "cpu",
    threshold: float = 0.1,
) -> list[dict[str, Any]]:
    """Evaluate on problem sets beyond the training distribution; one row per scenario.

    Each set is labelled by ``expert`` (the training data's). A scenario whose problems the expert
    cannot solve (e.g. targets unreachable within the control limit) is reported as skipped.
    """
    from mlcore_trc_control.data import generate_problem_set

    n = data_config.build_system().n
    init, target = data_config.ranges(n)
    rows: list[dict[str, Any]] = []
    for name, change in _scenarios(data_config, n):
        row: dict[str, Any] = {"scenario": name}
        try:
            cfg = (
                attrs.evolve(data_config, time_horizon=change["time_horizon"])
                if "time_horizon" in change
                else data_config
            )
            system = cfg.build_system()
            problems = generate_problem_set(
                system,
                num_samples,
                seed,
                np.asarray(change.get("initial_range", init)),
                np.asarray(change.get("target_range", target)),
                expert=expert,
                success_threshold=threshold,
                initial_sampler=change.get("initial_sampler"),
            )
        except MlcoreError as exc:
            row.update({"skipped": str(exc)})
            rows.append(row)
            continue
        controls = predict_controls(model, problems.problems(), device=device)
        m = rollout_metrics(system, problems, controls, threshold)
        oracle = rollout_metrics(system, problems, problems.control_sequences, threshold)
        row.update(
            {
                "mean_terminal_error": m["mean_terminal_error"],
                "success_rate": m["success_rate"],
                "cost_gap": m["lqr_cost"] / oracle["lqr_cost"] - 1.0,
                "oracle_success_rate": oracle["success_rate"],
                "limit_violation_rate": m["limit_violation_rate"],
            }
        )
        rows.append(row)
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 1000 or (0 < abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of ``rows`` with ``columns`` given as ``(key, header)``; missing values show as ``-``."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(r[k]) if k in r else "-" for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _save_figure(fig: Any, path: str | Path) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_baselines(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Bar charts of terminal error (log scale), success rate and mean cost per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["method"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].bar(names, [max(r["mean_terminal_error"], 1e-16) for r in rows], color="tab:blue")
    axes[0].set_yscale("log")
    axes[0].set_title("mean terminal error ||x_N - r||")
    axes[1].bar(names, [100 * r["success_rate"] for r in rows], color="tab:green")
    axes[1].set_title("success rate (%)")
    axes[2].bar(names, [r["mean_cost"] for r in rows], color="tab:orange")
    axes[2].set_yscale("log")
    axes[2].set_title("mean cost J")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=25, labelsize=8)
    return _save_figure(fig, path)


def plot_cycle_sweep(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Terminal error and success rate against the number of outer cycles at test time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cycles = [r["outer_cycles"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(cycles, [r["mean_terminal_error"] for r in rows], "o-", color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("outer cycles at test time")
    ax.set_ylabel("mean terminal error", color="tab:blue")
    if rows:
        ax.axvline(rows[0]["trained_with"], color="grey", linestyle=":", label="trained with")
        ax.legend(loc="upper center")
    ax2 = ax.twinx()
    ax2.plot(cycles, [100 * r["success_rate"] for r in rows], "s--", color="tab:green")
    ax2.set_ylabel("success rate (%)", color="tab:green")
    return _save_figure(fig, path)
