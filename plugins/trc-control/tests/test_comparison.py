"""Tests of the comparison stage: baselines, cycle sweep, generalisation suite, tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlcore_trc_control.comparison import (
    baseline_table,
    cycle_sweep,
    fit_linear_policy,
    generalisation_suite,
    halting_sweep,
    markdown_table,
    mlp_hidden_width,
    plot_baselines,
    plot_cycle_sweep,
    train_mlp_baseline,
)
from mlcore_trc_control.data import LQRData, LQRDataConfig
from mlcore_trc_control.evaluation import predict_controls, rollout_metrics
from mlcore_trc_control.models.mlp import MLPPolicy
from mlcore_trc_control.models.trc import TinyRecursiveControl


@pytest.fixture(scope="module")
def setup() -> tuple[TinyRecursiveControl, LQRData]:
    data = LQRData(LQRDataConfig(num_samples=32, test_num_samples=24)).prepare()
    model = TinyRecursiveControl.create_small(latent_dim=16, hidden_dim=16, num_inner_cycles=1)
    return model, data


def test_baselines_rank_the_oracle_first(setup, tmp_path: Path) -> None:
    model, data = setup
    test = data.test_problems()
    linear = fit_linear_policy(data.train_problems())
    rows = baseline_table(model, test, extra=[("linear", linear(test.problems()), linear.num_parameters)])
    by = {r["method"]: r for r in rows}
    lqr, oracle = "LQR optimum, box (stated cost, no x_N = r)", "oracle (optimal expert)"
    assert set(by) == {"random", "TRC", "linear", lqr, oracle}
    assert by["linear"]["parameters"] == 75 and by["TRC"]["parameters"] == model.num_parameters()
    assert by[oracle]["success_rate"] == 1.0
    assert by[oracle]["cost_gap_vs_oracle"] == pytest.approx(0.0, abs=1e-12)
    # the box LQR is cheaper (it may miss the target); the optimum costs only a little more
    assert by[lqr]["mean_cost"] <= by[oracle]["mean_cost"] < 1.05 * by[lqr]["mean_cost"]
    assert by["random"]["mean_terminal_error"] > by[oracle]["mean_terminal_error"]
    assert plot_baselines(rows, tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_linear_policy_is_exact_when_the_box_is_inactive() -> None:
    """With x_N = r and no active box the optimum is linear in [x0, r]: least squares recovers it."""
    data = LQRData(LQRDataConfig(num_samples=200, test_num_samples=100, control_limit=0.0)).prepare()
    linear = fit_linear_policy(data.train_problems())
    test = data.test_problems()
    m = rollout_metrics(test.system, test, linear(test.problems()))
    assert m["success_rate"] == 1.0 and m["mean_terminal_error"] < 1e-9
    np.testing.assert_allclose(linear(test.problems()), test.control_sequences, atol=1e-9)


def test_linear_policy_reaches_the_target_but_breaks_the_box_when_it_binds() -> None:
    """x_N is linear in U and every label satisfies x_N = r, so the least-squares fit reaches the
    target exactly even where the box binds; what it gets wrong there is the box and the cost."""
    data = LQRData(LQRDataConfig(num_samples=400, test_num_samples=200)).prepare()
    test = data.test_problems()
    linear = fit_linear_policy(data.train_problems())
    m = rollout_metrics(test.system, test, linear(test.problems()))
    oracle = rollout_metrics(test.system, test, test.control_sequences)
    assert m["mean_terminal_error"] < 1e-9
    assert m["limit_violation_rate"] > 0.2 and oracle["limit_violation_rate"] == 0.0
    assert m["control_mse"] > 1e-3


@pytest.mark.parametrize("budget", [2_000, 105_000, 528_000])
def test_mlp_width_matches_the_parameter_budget(budget: int) -> None:
    width = mlp_hidden_width(5, 15, budget)
    count = MLPPolicy(5, 15, 1, width).num_parameters()
    assert abs(count - budget) <= 0.02 * budget


def test_mlp_baseline_learns_from_the_training_labels() -> None:
    data = LQRData(LQRDataConfig(num_samples=300, test_num_samples=100, control_limit=0.0)).prepare()
    train, test = data.train_problems(), data.test_problems()
    untrained = train_mlp_baseline(train, None, 3000, epochs=0, batch_size=32, lr=3e-3)
    trained = train_mlp_baseline(train, None, 3000, epochs=20, batch_size=32, lr=3e-3)
    assert trained.num_parameters() == untrained.num_parameters()
    before = rollout_metrics(test.system, test, predict_controls(untrained, test.problems()))["control_mse"]
    after = rollout_metrics(test.system, test, predict_controls(trained, test.problems()))["control_mse"]
    assert after < 0.2 * before


def test_cycle_sweep_runs_each_count(setup, tmp_path: Path) -> None:
    model, data = setup
    rows = cycle_sweep(model, data.test_problems(), [3, 1, 2])
    assert [r["outer_cycles"] for r in rows] == [1, 2, 3]
    assert all(r["trained_with"] == 3 for r in rows)
    assert plot_cycle_sweep(rows, tmp_path / "s.png").exists()


def test_halting_sweep_reports_cycles_and_matches_the_fixed_runs(setup) -> None:
    model, data = setup
    test = data.test_problems()
    rows = halting_sweep(model, test, [float("inf"), 0.0])
    assert [r["mean_cycles"] for r in rows] == [1.0, 3.0]
    # tolerance inf = one cycle, 0 = every trained cycle: the same figures as the fixed-cycle sweep
    fixed = {r["outer_cycles"]: r for r in cycle_sweep(model, test, [1, 3])}
    assert rows[0]["control_mse"] == pytest.approx(fixed[1]["control_mse"], rel=1e-5)
    assert rows[1]["cost_gap"] == pytest.approx(fixed[3]["cost_gap"], rel=1e-5)


def test_generalisation_suite_reports_every_scenario(setup) -> None:
    model, data = setup
    rows = generalisation_suite(model, data.config, "optimal", num_samples=16)
    assert len(rows) == 7
    assert all("mean_terminal_error" in r or "skipped" in r for r in rows)
    assert rows[0]["oracle_success_rate"] == 1.0


def test_markdown_table() -> None:
    text = markdown_table([{"a": 1, "b": 0.5}, {"a": 2}], [("a", "A"), ("b", "B")])
    assert text.splitlines() == ["| A | B |", "|---|---|", "| 1 | 0.5000 |", "| 2 | - |"]
