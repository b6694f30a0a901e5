"""Comparisons for the ``trc`` pipeline: baselines, test-time cycle sweep and generalisation suite.

- :func:`baseline_table`: random controls vs TRC vs a least-squares linear policy vs an MLP of
  about TRC's parameter count (trained on the same data with the same budget) vs the
  box-constrained LQR optimum vs the expert oracle, one row each.
- :class:`LinearPolicy` / :func:`fit_linear_policy`: controls as a linear map of
  ``[x_0, r, T]``, fitted by least squares on the training labels. With an exact-terminal
  expert and an inactive box the optimal map *is* linear, so this baseline is exact there.
- :func:`train_mlp_baseline`: a plain MLP ``[x_0, r, T] -> controls`` (same normalisation, epochs,
  batch size, learning rate and cosine schedule as the TRC run).
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
    "LinearPolicy",
    "baseline_table",
    "cycle_sweep",
    "fit_linear_policy",
    "generalisation_suite",
    "halting_sweep",
    "markdown_table",
    "mlp_hidden_width",
    "plot_baselines",
    "plot_cycle_sweep",
    "train_mlp_baseline",
]


def _cycles(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if not value or any(int(v) < 1 for v in value):
        raise ValueError(f"{attribute.name}={value!r} must be a non-empty list of positive integers")


def _budgets(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if any(int(v) < 0 or int(v) != v for v in value):
        raise ValueError(f"{attribute.name}={value!r} must be a list of non-negative integers")


@attrs.define
class ComparisonConfig:
    """Config of the comparison stage (section ``comparison`` of the ``trc`` pipeline).

    Attributes:
        enabled: run the comparison stage at all.
        sweep_cycles: outer-cycle counts of the test-time sweep.
        generalisation: run the generalisation suite.
        generalisation_samples: problems per generalisation scenario.
        seed: seed of the generalisation problem sets (and of the MLP baseline's initialisation).
        linear_baseline: add the least-squares linear policy to the baselines.
        mlp_baseline: add an MLP with about the TRC model's parameter count, trained with the
            trainer's epochs, batch size and learning rate.
        halting_tolerances: tolerances of the adaptive-halting sweep (empty = none; see
            :meth:`~mlcore_trc_control.models.trc.TinyRecursiveControl.predict_adaptive`).
        refine_iterations: nonlinear systems: iLQR iteration budgets for the warm-start table
            (TRC, the linear policy, the MLP, zeros and the LQR on the linearisation as initial
            guesses; :mod:`~mlcore_trc_control.refinement`); empty = none.
    """

    enabled: bool = True
    sweep_cycles: list[int] = attrs.field(factory=lambda: [1, 2, 3, 4, 6, 8], validator=_cycles)
    generalisation: bool = True
    generalisation_samples: int = attrs.field(default=500, validator=positive)
    seed: int = 2024
    linear_baseline: bool = True
    mlp_baseline: bool = True
    halting_tolerances: list[float] = attrs.field(factory=lambda: [1.0, 0.1, 0.03, 0.01, 0.003, 0.0])
    refine_iterations: list[int] = attrs.field(factory=list, validator=_budgets)


@attrs.define
class LinearPolicy:
    """Controls ``(M, N, m)`` as ``[x_0, r, T] @ weights``: ``(2n+1) * N * m`` parameters, no bias
    (the horizon input plays the bias when it is constant)."""

    weights: np.ndarray  # (2n+1, N*m)
    num_steps: int
    control_dim: int

    @property
    def num_parameters(self) -> int:
        """Number of fitted coefficients."""
        return int(self.weights.size)

    def __call__(self, problems: np.ndarray) -> np.ndarray:
        """Controls for problems ``(M, 2n+1)``."""
        out = np.asarray(problems, dtype=np.float64) @ self.weights
        return out.reshape(-1, self.num_steps, self.control_dim)


def fit_linear_policy(train: LQRProblemSet) -> LinearPolicy:
    """Least-squares fit of the training labels as a linear function of ``[x_0, r, T]``."""
    targets = train.control_sequences.reshape(len(train), -1)
    weights = np.linalg.lstsq(train.problems(), targets, rcond=None)[0]
    return LinearPolicy(weights, train.system.num_steps, train.system.m)


def mlp_hidden_width(input_dim: int, output_dim: int, num_parameters: int, depth: int = 2) -> int:
    """Hidden width ``h`` of a ``depth``-hidden-layer MLP whose parameter count is closest to ``num_parameters``."""
    best, best_gap = 1, None
    for h in range(1, 4096):
        count = (input_dim + 1) * h + (depth - 1) * (h + 1) * h + (h + 1) * output_dim
        gap = abs(count - num_parameters)
        if best_gap is None or gap < best_gap:
            best, best_gap = h, gap
        if count > num_parameters:
            break
    return best


def train_mlp_baseline(
    train: LQRProblemSet,
    val: LQRProblemSet | None,
    num_parameters: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    device: Any = "cpu",
    projection: bool = False,
    projection_horizons: Sequence[float] | None = None,
) -> nn.Module:
    """An MLP ``[x_0, r, T] -> controls`` with ~``num_parameters`` weights (2 SiLU hidden layers),
    trained by Adam on the control MSE with a cosine schedule; the epoch with the lowest
    validation MSE is kept. Inputs and outputs are normalised like TRC's; ``projection`` adds TRC's
    terminal projection onto ``x_N = r`` and the box (for train's system; horizon-aware over
    ``projection_horizons`` when given)."""
    import torch
    from torch import nn

    from mlcore_trc_control.models.mlp import MLPPolicy

    problems, controls = train.tensors()
    steps, m = controls.shape[1], controls.shape[2]
    torch.manual_seed(seed)
    width = mlp_hidden_width(problems.shape[1], steps * m, num_parameters)
    model = MLPPolicy(problems.shape[1], steps, m, width, projection, projection_horizons)
    model.set_normalisation(problems, controls)
    model.set_system(train.system)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batches = max(1, -(-problems.shape[0] // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * batches))
    val_x, val_y = val.tensors() if val is not None and len(val) else (problems, controls)
    gen = torch.Generator().manual_seed(seed)
    best, best_state = float("inf"), None
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(problems.shape[0], generator=gen)
        for i in range(0, problems.shape[0], batch_size):
            idx = perm[i : i + batch_size]
            loss = nn.functional.mse_loss(model(problems[idx].to(device)), controls[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(nn.functional.mse_loss(model(val_x.to(device)), val_y.to(device)))
        if val_loss < best:
            best, best_state = val_loss, {k: v.clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


def baseline_table(
    model: nn.Module,
    problems: LQRProblemSet,
    *,
    device: Any = "cpu",
    threshold: float = 0.1,
    seed: int = 0,
    extra: Sequence[tuple[str, np.ndarray, int | None]] = (),
) -> list[dict[str, Any]]:
    """Rows for random controls, TRC, the ``extra`` policies ``(name, controls, parameters)``, the
    box-constrained LQR optimum and the expert oracle (cost gaps against the oracle)."""
    system = problems.system
    oracle_cost = float(problems.optimal_costs.mean())
    trc_params = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    candidates: list[tuple[str, np.ndarray, int | None]] = [
        ("random", random_controls(system, problems, seed), None),
        ("TRC", predict_controls(model, problems.problems(), device=device), trc_params),
        *extra,
    ]
    if problems.expert != "lqr":
        label = problems.metadata.get("lqr_label", "LQR optimum, box (stated cost, no x_N = r)")
        candidates.append((label, problems.lqr_control_sequences, None))
    candidates.append((f"oracle ({problems.expert} expert)", problems.control_sequences, None))
    rows = []
    for name, controls, params in candidates:
        m = rollout_metrics(system, problems, controls, threshold)
        rows.append(
            {
                "method": name,
                "parameters": params if params is not None else "-",
                "mean_terminal_error": m["mean_terminal_error"],
                "success_rate": m["success_rate"],
                "mean_cost": m["lqr_cost"],
                "cost_gap_vs_oracle": m["lqr_cost"] / oracle_cost - 1.0,
                "control_mse": m["control_mse"],
                "limit_violation_rate": m["limit_violation_rate"],
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


def halting_sweep(
    model: nn.Module,
    problems: LQRProblemSet,
    tolerances: Sequence[float],
    *,
    device: Any = "cpu",
    threshold: float = 0.1,
    batch_size: int = 1024,
) -> list[dict[str, Any]]:
    """Adaptive halting at each tolerance: cycles used (mean, max) against success, control MSE and cost gap."""
    import torch

    oracle_cost = float(problems.optimal_costs.mean())
    inputs = torch.as_tensor(problems.problems(), dtype=torch.float32)
    was_training = model.training
    model.eval()
    rows = []
    try:
        for tol in tolerances:
            parts, used = [], []
            for i in range(0, inputs.shape[0], batch_size):
                controls, cycles = model.predict_adaptive(inputs[i : i + batch_size].to(device), float(tol))  # type: ignore[operator]
                parts.append(controls.float().cpu().numpy())
                used.append(cycles.cpu().numpy())
            cycles_used = np.concatenate(used)
            m = rollout_metrics(problems.system, problems, np.concatenate(parts).astype(np.float64), threshold)
            rows.append(
                {
                    "tolerance": float(tol),
                    "mean_cycles": float(cycles_used.mean()),
                    "max_cycles_used": int(cycles_used.max()),
                    "success_rate": m["success_rate"],
                    "mean_terminal_error": m["mean_terminal_error"],
                    "control_mse": m["control_mse"],
                    "cost_gap": m["lqr_cost"] / oracle_cost - 1.0,
                }
            )
    finally:
        model.train(was_training)
    return rows


def _scenarios(cfg: LQRDataConfig, n: int) -> list[tuple[str, dict[str, Any]]]:
    init, target = cfg.ranges(n)
    horizon = cfg.build_system().time_horizon

    def shell(rng: np.random.Generator, num: int) -> np.ndarray:
        # every coordinate between 1x and 1.5x the training half-width, random sign: outside the box
        mag = rng.uniform(1.0, 1.5, (num, n)) * init
        return mag * rng.choice([-1.0, 1.0], (num, n))

    scenarios: list[tuple[str, dict[str, Any]]] = [
        ("in distribution (fresh sample)", {}),
        ("initial range x1.5", {"initial_range": init * 1.5}),
        ("initial range x2", {"initial_range": init * 2.0}),
        ("target range x1.5", {"target_range": target * 1.5}),
        (f"horizon {0.8 * horizon:g} s (x0.8)", {"time_horizon": 0.8 * horizon}),
        (f"horizon {horizon:g} s (x1)", {"time_horizon": horizon}),
        (f"horizon {1.2 * horizon:g} s (x1.2)", {"time_horizon": 1.2 * horizon}),
        ("initial states outside the training box (x1-1.5)", {"initial_sampler": shell}),
    ]
    if cfg.nonlinear:  # fixed targets (target range 0); pendulum angles beyond ±π are the same states
        scenarios = [s for s in scenarios if s[0] not in ("target range x1.5", "initial range x2")]
    else:  # one fixed horizon: x1 is the in-distribution row
        scenarios = [s for s in scenarios if not s[0].endswith("(x1)")]
    return scenarios


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
                attrs.evolve(data_config, time_horizon=change["time_horizon"], horizon_range=None)
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
                horizon_range=cfg.horizons_bounds(),
            )
        except MlcoreError as exc:
            row.update({"skipped": str(exc)})
            rows.append(row)
            continue
        controls = predict_controls(model, problems.problems(), device=device)
        limit = system.control_limit
        if limit > 0 and data_config.nonlinear:
            controls = np.clip(controls, -limit, limit)
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
