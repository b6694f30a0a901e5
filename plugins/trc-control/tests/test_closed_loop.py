"""Tests of mlcore_trc_control.closed_loop: plan resampling, open/closed-loop rollouts, the expert re-planner."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.errors import ConfigError
from mlcore_trc_control.closed_loop import (
    ExpertPlanner,
    closed_loop_rollout,
    open_loop_rollout,
    policy_planner,
    resample_plan,
)
from mlcore_trc_control.nonlinear.expert import multiple_shooting
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system


def test_resample_plan_on_the_plant_grid_and_on_a_finer_one() -> None:
    plan = np.array([[[1.0], [3.0], [5.0], [7.0]]])
    same = np.array([0.5])
    # on the plant's own grid the applied control is the plan's control of that step
    assert resample_plan(plan, same, 1.0, same)[0, 0] == pytest.approx(5.0)
    # a plan on a grid half as long: one plant step covers two plan steps -> their average
    assert resample_plan(plan, np.array([0.25]), 0.0, np.array([0.5]))[0, 0] == pytest.approx(2.0)
    # a step straddling plan steps unevenly, and one beyond the plan's end (the last control holds)
    assert resample_plan(plan, np.array([0.5]), 0.25, np.array([0.5]))[0, 0] == pytest.approx(2.0)
    assert resample_plan(plan, np.array([0.5]), 1.75, np.array([0.5]))[0, 0] == pytest.approx(7.0)


@pytest.fixture(scope="module")
def vanderpol():
    system = build_nonlinear_system("vanderpol", num_steps=20, time_horizon=4.0)
    x0 = np.array([[1.5, -1.0], [-1.0, 1.8], [0.5, 0.5]])
    targets = np.zeros_like(x0)
    horizons = np.full(3, 4.0)
    return system, x0, targets, horizons, multiple_shooting(system, x0, targets, horizons)


def test_open_loop_rollout_is_the_system_rollout(vanderpol) -> None:
    system, x0, targets, horizons, expert = vanderpol
    result = open_loop_rollout(system, x0, targets, horizons, expert.controls)
    assert np.allclose(result.states, expert.states)
    assert np.allclose(result.costs, expert.costs)
    assert result.summary()["success_rate"] == 1.0


def test_expert_replanning_without_noise_reproduces_the_open_loop_optimum(vanderpol) -> None:
    # shrinking horizon on the plant's grid: every re-plan is the exact tail problem (Bellman), so the
    # executed trajectory is the open-loop optimum; a wrong remaining horizon or step count breaks it
    system, x0, targets, horizons, expert = vanderpol
    planner = ExpertPlanner(system, initial=expert.controls)
    result = closed_loop_rollout(system, x0, targets, horizons, planner, replan_every=4)
    assert result.replans == 5
    assert np.allclose(result.controls, expert.controls, atol=1e-4)
    assert result.costs == pytest.approx(expert.costs, rel=1e-5)
    assert planner.status_counts["terminal"] == 15


def test_expert_closed_loop_beats_open_loop_under_actuation_noise() -> None:
    # the upright pendulum amplifies open-loop errors; re-planning from the measured state corrects them
    system = build_nonlinear_system("pendulum", num_steps=30, time_horizon=5.0)
    x0 = np.array([[3.0, 0.0], [2.0, 0.3], [1.0, -1.0], [-2.5, -0.5]])
    targets, horizons = np.zeros_like(x0), np.full(4, 5.0)
    expert = multiple_shooting(system, x0, targets, horizons)
    assert expert.status == ["terminal"] * 4
    opened = open_loop_rollout(system, x0, targets, horizons, expert.controls, control_noise=0.01, seed=1)
    planner = ExpertPlanner(system, initial=expert.controls)
    closed = closed_loop_rollout(system, x0, targets, horizons, planner, replan_every=3, control_noise=0.01, seed=1)
    assert closed.summary()["success_rate"] >= opened.summary()["success_rate"]
    assert closed.summary()["success_rate"] >= 0.75
    assert closed.terminal_errors.mean() < opened.terminal_errors.mean() / 3
    assert closed.costs.mean() < opened.costs.mean()


def test_noise_is_clipped_to_the_box_and_seeded(vanderpol) -> None:
    system, x0, targets, horizons, expert = vanderpol
    a = open_loop_rollout(system, x0, targets, horizons, expert.controls, control_noise=5.0, seed=3)
    b = open_loop_rollout(system, x0, targets, horizons, expert.controls, control_noise=5.0, seed=3)
    assert np.abs(a.controls).max() <= system.control_limit
    assert np.array_equal(a.controls, b.controls)
    assert not np.allclose(a.controls, expert.controls)


def test_policy_planner_feeds_state_target_and_horizon(vanderpol) -> None:
    system, x0, targets, horizons, _ = vanderpol
    seen = []

    def policy(problems: np.ndarray) -> np.ndarray:
        seen.append(problems.copy())
        return np.full((problems.shape[0], system.num_steps, 1), 10.0)

    result = closed_loop_rollout(
        system, x0, targets, horizons, policy_planner(policy, clip_to=2.0), replan_every=5, horizon="shrinking"
    )
    assert np.abs(result.controls).max() == pytest.approx(2.0)  # clipped
    assert len(seen) == 4
    assert np.allclose(seen[0][:, :2], x0) and np.allclose(seen[0][:, 4], 4.0)
    assert np.allclose(seen[1][:, :2], result.states[:, 5])  # the measured state, not x0
    assert np.allclose(seen[2][:, 4], 4.0 * (1 - 10 / 20))  # the remaining horizon
    receding = []
    closed_loop_rollout(
        system, x0, targets, horizons, policy_planner(lambda p: receding.append(p) or policy(p)), horizon="receding"
    )
    assert all(np.allclose(p[:, 4], 4.0) for p in receding)


def test_bad_settings_are_config_errors(vanderpol) -> None:
    system, x0, targets, horizons, expert = vanderpol
    with pytest.raises(ConfigError, match=r"closed_loop\.horizon='sliding'"):
        closed_loop_rollout(system, x0, targets, horizons, lambda *a, **k: expert.controls, horizon="sliding")
    with pytest.raises(ConfigError, match=r"closed_loop\.replan_every=0"):
        closed_loop_rollout(system, x0, targets, horizons, lambda *a, **k: expert.controls, replan_every=0)


def test_the_expert_goes_soft_when_too_few_steps_are_left_for_x_N_equal_r() -> None:
    # one step of one control cannot meet two terminal conditions: the exact NLP is overconstrained
    # (IPOPT warns and fails); the planner must solve the soft problem directly, not try it first
    system = build_nonlinear_system("pendulum", num_steps=10, time_horizon=2.0)
    planner = ExpertPlanner(system)
    calls: list[bool] = []
    for steps in (1, 2):
        solver = planner._solver(steps)
        solve = solver.solve

        def spy(*args, terminal=True, _solve=solve, **kwargs):
            calls.append(terminal)
            return _solve(*args, terminal=terminal, **kwargs)

        solver.solve = spy
    x0 = np.array([[0.05, 0.0], [-0.02, 0.1]])
    plan = planner(x0, np.zeros_like(x0), np.full(2, 0.2), steps=1)
    assert plan.shape == (2, 1, 1)
    assert calls == [False, False]
    assert planner.status_counts == {"terminal": 0, "soft": 2, "failed": 0}
    planner(x0, np.zeros_like(x0), np.full(2, 0.4), steps=2)  # two steps: x_N = r is reachable
    assert calls[2:] == [True, True] and planner.status_counts["terminal"] == 2
