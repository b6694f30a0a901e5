"""Tests of mlcore_trc_control.deployment: the open- vs closed-loop table on identical problems."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.config import structure
from mlcore_trc_control.closed_loop import policy_planner
from mlcore_trc_control.comparison import fit_linear_policy
from mlcore_trc_control.data import generate_problem_set
from mlcore_trc_control.deployment import ClosedLoopConfig, closed_loop_table
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system


@pytest.fixture(scope="module")
def problems():
    system = build_nonlinear_system("vanderpol", num_steps=15, time_horizon=3.0)
    train = generate_problem_set(system, 30, 0, np.array([2.0, 2.0]), np.zeros(2))
    test = generate_problem_set(system, 5, 1, np.array([2.0, 2.0]), np.zeros(2))
    return train, test


def test_table_has_every_policy_loop_and_noise_level(problems) -> None:
    train, test = problems
    linear = fit_linear_policy(train)
    config = ClosedLoopConfig(enabled=True, replan_every=5, noise_levels=[0.0, 0.05])
    rows = closed_loop_table(test, {"linear": (policy_planner(linear, clip_to=2.0), None)}, config)
    keys = [(r["method"], r["loop"], r["control_noise"]) for r in rows]
    assert keys == [
        (m, loop, noise) for m in ("linear", "expert (optimal)") for noise in (0.0, 0.05) for loop in ("open", "closed")
    ]
    by = {k: r for k, r in zip(keys, rows)}
    # the expert's open loop is its labels (gap 0), its noiseless closed loop the same optimum
    assert by[("expert (optimal)", "open", 0.0)]["cost_gap"] == pytest.approx(0.0, abs=1e-12)
    assert by[("expert (optimal)", "closed", 0.0)]["cost_gap"] == pytest.approx(0.0, abs=1e-4)
    assert by[("expert (optimal)", "closed", 0.0)]["replans"] == 3
    # the linear policy's open-loop row is the plain rollout of its controls
    open_linear = by[("linear", "open", 0.0)]
    expected = test.system.cost(
        test.rollout(np.clip(linear(test.problems()), -2, 2)),
        np.clip(linear(test.problems()), -2, 2),
        test.target_states,
    )
    assert open_linear["mean_cost"] == pytest.approx(expected.mean())
    assert open_linear["cost_gap"] == pytest.approx(expected.mean() / test.optimal_costs.mean() - 1)


def test_config_from_a_table_and_bad_values() -> None:
    cfg = structure(ClosedLoopConfig, {"enabled": True, "horizon": "receding", "noise_levels": [0.0, 0.01]})
    assert cfg.horizon == "receding" and cfg.noise_levels == [0.0, 0.01]
    with pytest.raises(Exception, match="horizon"):
        structure(ClosedLoopConfig, {"horizon": "sliding"})
    with pytest.raises(Exception, match="noise_levels"):
        structure(ClosedLoopConfig, {"noise_levels": [-1.0]})
    with pytest.raises(Exception, match="dagger_with_selection=true needs select_cycles > 0"):
        structure(ClosedLoopConfig, {"dagger_with_selection": True})
    assert structure(ClosedLoopConfig, {"dagger_with_selection": True, "select_cycles": 2}).dagger_with_selection
