"""Tests of mlcore_trc_control.nonlinear.expert: the multiple-shooting optimum vs LQR on the linearisation."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from mlcore_trc_control.nonlinear.expert import (
    ShootingSolver,
    lqr_on_linearisation,
    multiple_shooting,
    neighbour_restarts,
    problem_cost,
)
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system


@pytest.fixture(scope="module")
def pendulum_solutions():
    sys = build_nonlinear_system("pendulum", num_steps=30)
    x0 = np.array([[3.0, 0.0], [-2.0, 0.5], [1.0, -1.0], [0.3, 0.2]])  # hanging ... near upright
    targets = np.zeros_like(x0)
    lqr = lqr_on_linearisation(sys, x0, targets)
    return sys, x0, targets, lqr, multiple_shooting(sys, x0, targets, lqr=lqr)


def test_expert_meets_bounds_and_terminal_constraint(pendulum_solutions) -> None:
    sys, x0, targets, _, ms = pendulum_solutions
    assert ms.status == ["terminal"] * 4
    assert np.abs(ms.controls).max() <= sys.control_limit
    assert ms.terminal_errors.max() < 1e-4
    # the stored states are the true RK4 rollout of the stored controls, and the costs are J
    assert np.allclose(ms.states, sys.rollout(x0, ms.controls))
    assert np.allclose(ms.costs, sys.cost(ms.states, ms.controls, targets))


def test_expert_beats_lqr_on_the_linearisation(pendulum_solutions) -> None:
    _, _, _, lqr, ms = pendulum_solutions
    # from hanging, the linearised LQR cannot swing up within the box; the expert can, and is cheaper
    assert lqr.terminal_errors[0] > 1.0 and ms.terminal_errors[0] < 1e-4
    assert np.all(lqr.terminal_errors[:3] > 0.1)
    assert np.all(ms.costs[:3] < 0.5 * lqr.costs[:3])
    # near upright the linearisation is good: LQR comes close to the target at about the optimum's
    # cost (a little below it: LQR does not have to meet x_N = r exactly)
    assert lqr.terminal_errors[3] < 0.1 and abs(lqr.costs[3] / ms.costs[3] - 1) < 0.05


def test_vanderpol_expert_is_no_worse_than_lqr_and_local_optimality() -> None:
    sys = build_nonlinear_system("vanderpol", num_steps=25)
    rng = np.random.default_rng(3)
    x0 = rng.uniform(-2, 2, (5, 2))
    targets = np.zeros_like(x0)
    ms = multiple_shooting(sys, x0, targets)
    lqr = lqr_on_linearisation(sys, x0, targets)
    assert np.all(ms.costs <= lqr.costs + 1e-6) and ms.terminal_errors.max() < 1e-5
    # local optimality: feasible perturbations (re-projected onto x_N = r by the solver's own
    # constraint) cannot be checked cheaply, so check the cost is not lowered by small moves that
    # keep the controls in the box while the terminal error stays tiny — none exists among random ones
    rollout = sys.rollout
    for i in range(2):
        for _ in range(20):
            du = rng.normal(0, 1e-3, ms.controls[i].shape)
            u = np.clip(ms.controls[i] + du, -2, 2)
            states = rollout(x0[i : i + 1], u[None])
            err = np.linalg.norm(states[0, -1])
            cost = sys.cost(states, u[None], targets[:1])[0]
            assert cost >= ms.costs[i] - 1e-6 or err > 1e-4


def test_infeasible_target_falls_back_to_the_soft_problem() -> None:
    sys = build_nonlinear_system("pendulum", num_steps=10, time_horizon=1.0, control_limit=0.5)
    ms = multiple_shooting(sys, np.array([[3.0, 0.0]]), np.zeros((1, 2)))
    assert ms.status == ["soft"]
    assert ms.terminal_errors[0] > 1.0 and np.abs(ms.controls).max() <= 0.5


def test_rocket_expert_lands_above_ground_within_the_box() -> None:
    sys = build_nonlinear_system("rocket", num_steps=20, time_horizon=25.0)
    rng = np.random.default_rng(0)
    x0 = sys.initial_center + rng.uniform(-1, 1, (3, 7)) * np.array(sys.template.initial_range)
    targets = np.zeros_like(x0)
    lqr = lqr_on_linearisation(sys, x0, targets)
    ms = multiple_shooting(sys, x0, targets, lqr=lqr)
    assert ms.status == ["terminal"] * 3
    assert ms.terminal_errors.max() < 1e-6  # position and velocity; the mass is free
    assert np.all(ms.states[:, -1, 6] < x0[:, 6] - 10)  # fuel was burnt
    assert ms.states[:, 1:, 2].min() >= -1e-6  # the ground, on every node
    assert np.abs(ms.controls).max() <= sys.control_limit
    assert np.all(ms.costs <= lqr.costs) and lqr.terminal_errors.min() > 0.1


def test_a_start_from_a_trajectory_keeps_its_route_where_its_rollout_would_leave_it() -> None:
    # near upright: one step of 90 % of the optimal first push, then the rest from there. The old
    # tail, rolled out from the new state, falls over (the upright pendulum amplifies the difference);
    # initialised on the old trajectory, the nodes stay on the route and the tail costs ~the same
    sys = build_nonlinear_system("pendulum", num_steps=30)
    x0, target = np.array([[0.08, -0.51]]), np.zeros(2)
    label = multiple_shooting(sys, x0, target[None], neighbours=0)
    dt = sys.time_horizon / sys.num_steps
    first = 0.9 * label.controls[0, :1]
    x1 = attrs.evolve(sys, num_steps=1).rollout(x0, first[None], np.array([dt]))[0, -1]
    rest = attrs.evolve(sys, num_steps=sys.num_steps - 1)
    tail = label.controls[0, 1:]
    assert np.linalg.norm(rest.rollout(x1[None], tail[None], np.array([sys.time_horizon - dt]))[0, -1]) > 1.0
    u, ok = ShootingSolver(rest).solve(x1, target, dt, tail, guess_states=label.states[0, 1:])
    cost = problem_cost(sys, x0[0], target, sys.time_horizon, np.concatenate([first, u]))
    assert ok and cost < 1.02 * label.costs[0]


@pytest.fixture(scope="module")
def pendulum_routes():
    """Problem 0 swings up the costly way in the expert's pass in order; the cheaper way is the
    mirror image of problem 1's swing-up negated (found on the 40 test problems by
    tools/bench/trc_expert_neighbours.py); problem 2 starts near upright."""
    sys = build_nonlinear_system("pendulum", num_steps=30)
    x0 = np.array([[-2.036, 0.624], [1.771, -0.732], [0.3, 0.1]])
    targets = np.zeros_like(x0)
    return sys, x0, targets, multiple_shooting(sys, x0, targets, neighbours=0)


def test_neighbour_restarts_find_the_cheaper_swing_up_through_the_mirrored_pool(pendulum_routes) -> None:
    sys, x0, targets, one_pass = pendulum_routes
    # one neighbour only: in plain (x_0, r, T) the nearest problem to 0 is 2 (near upright, no help);
    # the mirror of problem 1, (-1.771, 0.732), is nearer, and its route negated is the cheap one
    found = multiple_shooting(sys, x0, targets, neighbours=1)
    assert found.costs[0] < 0.7 * one_pass.costs[0]
    # and back: problem 0's new route, mirrored, is problem 1's cheap one. Its start is the mirrored
    # trajectory, not the controls' rollout from problem 1's x_0, which leaves that route
    assert found.neighbour_improved == 2 and found.costs[1] < 0.7 * one_pass.costs[1]
    assert np.all(found.costs <= one_pass.costs * (1 + 1e-9))
    assert found.status == ["terminal"] * 3 and found.terminal_errors.max() < 1e-6
    assert np.abs(found.controls).max() <= sys.control_limit
    assert np.allclose(found.costs, sys.cost(sys.rollout(x0, found.controls), found.controls, targets))
    assert found.summary()["neighbour_improved"] == 2


def test_neighbour_restarts_keep_what_they_cannot_improve(pendulum_routes) -> None:
    sys, x0, targets, one_pass = pendulum_routes
    controls, improved = neighbour_restarts(
        sys, x0, targets, np.full(3, sys.time_horizon), one_pass.controls, np.array([False, True, True])
    )
    # problem 0 is not in the pool (not converged): it is neither re-solved nor used as a start
    assert np.array_equal(controls[0], one_pass.controls[0])
    states = sys.rollout(x0, controls)
    assert np.all(sys.cost(states, controls, targets) <= one_pass.costs * (1 + 1e-9))
    assert improved == int(np.sum(np.any(controls != one_pass.controls, axis=(1, 2))))


def test_an_extra_warm_start_is_kept_only_where_it_is_cheaper(pendulum_routes) -> None:
    sys, x0, targets, one_pass = pendulum_routes
    cheap = multiple_shooting(sys, x0, targets, neighbours=1)
    # the cheap route as problem 0's extra start (what DAgger's learner plan is), a poor one for 1
    starts = np.stack([cheap.controls[0], np.full((sys.num_steps, 1), -sys.control_limit), cheap.controls[2]])
    given = multiple_shooting(sys, x0, targets, neighbours=0, warm_starts=starts)
    assert given.costs[0] < 0.7 * one_pass.costs[0]
    assert np.all(given.costs <= one_pass.costs * (1 + 1e-9)) and given.terminal_errors.max() < 1e-6


def test_a_library_of_solutions_from_afar_finds_the_route_no_neighbourhood_holds(pendulum_routes) -> None:
    sys, x0, targets, one_pass = pendulum_routes
    # no neighbours at all: the cheap swing-up of problem 0 can only come from the library, which
    # (seed 0) holds problem 1's solution; negated, it is the cheap route
    found = multiple_shooting(sys, x0, targets, neighbours=0, library=2)
    assert found.neighbour_improved == 1 and found.costs[0] < 0.7 * one_pass.costs[0]
    assert np.all(found.costs <= one_pass.costs * (1 + 1e-9)) and found.terminal_errors.max() < 1e-6
    # with the neighbours too: a library entry that is also a neighbour is one more start (rolled out
    # from x_0 rather than initialised on its trajectory), not a duplicate to skip
    both = multiple_shooting(sys, x0, targets, neighbours=5, library=2)
    assert both.costs[0] < 0.7 * one_pass.costs[0] and both.costs[1] < 0.7 * one_pass.costs[1]


def test_a_library_tried_on_a_few_problems_solves_there_first_and_spreads(pendulum_routes) -> None:
    sys, _, _, _ = pendulum_routes
    # two near-twins on the costly route, the source of the cheap one, a problem near upright
    x0 = np.array([[-2.036, 0.624], [-2.03, 0.62], [1.771, -0.732], [0.3, 0.1]])
    targets, horizons = np.zeros_like(x0), np.full(4, sys.time_horizon)
    one_pass = multiple_shooting(sys, x0, targets, neighbours=0)
    calls: list[int] = []

    class Spy(ShootingSolver):
        def solve(self, start, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(int(np.argmin(np.abs(x0 - start).sum(axis=1))))
            return super().solve(start, *args, **kwargs)

    def restarts(neighbours: int, problems: int | list[int] = 1) -> np.ndarray:
        calls.clear()
        controls, _ = neighbour_restarts(
            sys, x0, targets, horizons, one_pass.controls, np.ones(4, dtype=bool), solver=Spy(sys),
            neighbours=neighbours, library=2, library_problems=problems,
        )  # fmt: skip
        return sys.cost(sys.rollout(x0, controls), controls, targets)

    # no neighbours: only the one drawn problem is re-solved, from the library's starts
    alone = restarts(0)
    probed = set(calls)
    assert len(probed) == 1 and probed != {0}
    assert np.all(alone <= one_pass.costs * (1 + 1e-9))
    # with neighbours, the drawn problem is still solved first (pass 1 starts there: what it finds is
    # then a neighbour's start for the rest of the pass), and both twins end on the cheap route
    spread = restarts(1)
    assert calls[0] in probed
    assert spread[0] < 0.7 * one_pass.costs[0] and spread[1] < 0.7 * one_pass.costs[1]
    # the problems can be named instead of drawn (e.g. the costliest labels): only those see the library
    named = restarts(0, [0])
    assert set(calls) == {0} and named[0] < 0.7 * one_pass.costs[0]
    assert np.array_equal(named[1:], one_pass.costs[1:])
    restarts(0, [3, 2])
    assert set(calls) == {2, 3}
