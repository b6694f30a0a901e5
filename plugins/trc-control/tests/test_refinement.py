"""Tests of mlcore_trc_control.refinement: learned plans as iLQR warm starts."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_trc_control.comparison import ComparisonConfig
from mlcore_trc_control.data import generate_problem_set
from mlcore_trc_control.lqr.systems import build_system
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system
from mlcore_trc_control.refinement import LQR_WARM_START, plot_refinement, refinement_table


@pytest.fixture(scope="module")
def pendulum_set():
    system = build_nonlinear_system("pendulum", num_steps=20, time_horizon=3.0)
    return generate_problem_set(system, 6, 3, np.array([0.6, 0.6]), np.zeros(2))


@pytest.fixture(scope="module")
def rows(pendulum_set):
    starts = {"expert": pendulum_set.control_sequences, "zeros": np.zeros_like(pendulum_set.control_sequences)}
    starts[LQR_WARM_START] = None
    return refinement_table(pendulum_set, starts, [3, 0, 1])


def _by(rows, name):
    return {r["iterations"]: r for r in rows if r["warm_start"] == name}


def test_zero_iterations_is_the_warm_start_itself(rows, pendulum_set) -> None:
    expert = _by(rows, "expert")
    assert sorted(expert) == [0, 1, 3]  # budgets sorted, one row each
    assert expert[0]["success_rate"] == 1.0
    assert expert[0]["cost_gap"] == pytest.approx(0.0, abs=1e-9)
    assert expert[0]["ms_per_problem"] == 0.0 and expert[3]["ms_per_problem"] > 0.0
    zeros = _by(rows, "zeros")
    assert zeros[0]["success_rate"] == 0.0  # no torque: the pendulum stays away from upright


def test_iterations_only_lower_the_cost_and_start_where_they_are_told(rows) -> None:
    for name in ("expert", "zeros", LQR_WARM_START):
        by = _by(rows, name)
        assert by[3]["mean_cost"] <= by[1]["mean_cost"] <= by[0]["mean_cost"] * (1 + 1e-12), name
        assert 0.0 <= by[3]["converged"] <= 1.0
    # started at the optimum, iLQR stays there; started from zeros, one iteration is far from it
    # (a table that ignored the warm start would give every start the same rows)
    assert _by(rows, "expert")[1]["cost_gap"] < 1e-6
    assert _by(rows, "zeros")[1]["cost_gap"] > 0.05
    assert _by(rows, "zeros")[1]["mean_cost"] != _by(rows, LQR_WARM_START)[1]["mean_cost"]


def test_plot_and_the_config_check(rows, tmp_path) -> None:
    plot_refinement(rows, tmp_path / "plots" / "refinement.png")
    assert (tmp_path / "plots" / "refinement.png").stat().st_size > 1000
    assert ComparisonConfig(refine_iterations=[0, 5]).refine_iterations == [0, 5]
    with pytest.raises(ValueError, match="refine_iterations"):
        ComparisonConfig(refine_iterations=[-1])


def test_a_linear_system_is_refused() -> None:
    system = build_system("double_integrator")
    problems = generate_problem_set(system, 2, 0, np.array([1.0, 1.0]), np.zeros(2))
    with pytest.raises(ValueError, match="nonlinear"):
        refinement_table(problems, {"zeros": None}, [1])
