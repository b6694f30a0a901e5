"""Tests of mlcore_trc_control.selection: simulated outcomes, the ranking, the kept tail, the proposers."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore_trc_control.closed_loop import closed_loop_rollout
from mlcore_trc_control.deployment import ClosedLoopConfig
from mlcore_trc_control.models.config import TRCConfig
from mlcore_trc_control.models.mlp import MLPPolicy
from mlcore_trc_control.models.trc import TinyRecursiveControl
from mlcore_trc_control.nonlinear.expert import multiple_shooting
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system
from mlcore_trc_control.selection import SelectingPlanner, network_proposer, simulated_outcome

STEPS = 20


@pytest.fixture(scope="module")
def vanderpol():
    system = build_nonlinear_system("vanderpol", num_steps=STEPS, time_horizon=4.0)
    x0 = np.array([[1.5, -1.0], [-1.0, 1.8], [0.5, 0.5]])
    targets = np.zeros_like(x0)
    horizons = np.full(3, 4.0)
    hard = multiple_shooting(system, x0, targets, horizons)
    soft = multiple_shooting(system, x0, targets, horizons, terminal=False)
    return system, x0, targets, horizons, hard, soft


def _fixed(*plans: np.ndarray):
    """A proposer that always offers ``plans`` (each ``(B, K, m)``)."""
    return lambda states, targets, horizons: np.stack(plans)


def test_simulated_outcome_is_the_rollout_cost_and_terminal_error(vanderpol) -> None:
    system, x0, targets, horizons, _, soft = vanderpol
    cost, error = simulated_outcome(system, x0, targets, soft.controls, horizons / STEPS)
    assert cost == pytest.approx(soft.costs, rel=1e-10)
    assert error == pytest.approx(np.linalg.norm(soft.states[:, -1] - targets, axis=1), rel=1e-8)
    blown = np.full_like(soft.controls, 1e200)  # a diverging simulation ranks last, as inf
    assert np.all(np.isinf(simulated_outcome(system, x0, targets, blown, horizons / STEPS)[0]))


def test_landing_candidates_win_then_the_cheapest(vanderpol) -> None:
    # the soft optimum is cheaper than the terminal-constrained one but misses x_N = r by a little
    system, x0, targets, horizons, hard, soft = vanderpol
    miss = np.linalg.norm(soft.states[:, -1] - targets, axis=1)
    assert np.all(soft.costs < hard.costs) and np.all(miss > 1e-6)
    strict = SelectingPlanner(system, _fixed(soft.controls, hard.controls), margin=1e-6)
    assert np.allclose(strict(x0, targets, horizons, steps=STEPS), hard.controls)
    loose = SelectingPlanner(system, _fixed(hard.controls, soft.controls), margin=1.0)
    assert np.allclose(loose(x0, targets, horizons, steps=STEPS), soft.controls)
    # nothing counts as landing (margin < 0): the smallest predicted error wins, not the lowest cost
    none = SelectingPlanner(system, _fixed(soft.controls, hard.controls), margin=-1.0)
    assert np.allclose(none(x0, targets, horizons, steps=STEPS), hard.controls)


def test_the_kept_tail_holds_the_best_plan_against_worse_proposals(vanderpol) -> None:
    # the first proposal is the optimum, every later one noise: with the kept tail the closed loop
    # executes the optimum exactly; without it, it follows the noise
    system, x0, targets, horizons, hard, _ = vanderpol
    rng = np.random.default_rng(0)
    calls = []

    def proposer(states, targets_, horizons_):
        calls.append(horizons_.copy())
        if len(calls) == 1:
            return hard.controls[None]
        return rng.uniform(-2.0, 2.0, (2, *hard.controls.shape))

    planner = SelectingPlanner(system, proposer, margin=0.05)
    result = closed_loop_rollout(system, x0, targets, horizons, planner, replan_every=1)
    assert np.allclose(result.controls, hard.controls, atol=1e-9)
    assert result.costs == pytest.approx(hard.costs, rel=1e-9)
    assert planner.counts["kept"] == 3 * (STEPS - 1) and planner.counts["switched"] == 0
    # the proposer is asked with the time left (shrinking horizon)
    assert calls[5] == pytest.approx(horizons * (1 - 5 / STEPS))
    calls.clear()
    forgetful = SelectingPlanner(system, proposer, margin=0.05, keep_previous=False)
    again = closed_loop_rollout(system, x0, targets, horizons, forgetful, replan_every=1)
    assert again.costs.mean() > 1.05 * hard.costs.mean()
    planner.reset()
    assert planner.counts == {"switched": 0, "kept": 0, "polished": 0}


@pytest.fixture
def trc() -> TinyRecursiveControl:
    """A seeded small TRC for the Van der Pol problems (untrained: its candidates are what is tested)."""
    torch.manual_seed(0)
    return TinyRecursiveControl(
        TRCConfig(size="small", state_dim=2, control_dim=1, num_steps=STEPS, terminal_projection=False)
    ).eval()


def test_network_proposer_offers_every_cycle_of_trc_and_one_plan_otherwise(vanderpol, trc) -> None:
    _, x0, targets, horizons, *_ = vanderpol
    problems = torch.as_tensor(np.concatenate([x0, targets, horizons[:, None]], axis=1), dtype=torch.float32)
    plans = network_proposer(trc, cycles=4)(x0, targets, horizons)
    assert plans.shape == (4, 3, STEPS, 1)
    with torch.no_grad():
        expected = [c.double().numpy() for c in trc.forward_cycles(problems, num_outer_cycles=4)]
        assert np.allclose(plans, np.stack(expected), atol=1e-6)
        assert np.allclose(plans[trc.num_outer_cycles - 1], trc(problems).double().numpy(), atol=1e-6)
    clipped = network_proposer(trc, cycles=2, clip_to=1e-3)(x0, targets, horizons)
    assert np.abs(clipped).max() <= 1e-3
    # jitter: the same cycles again from x ± d_i e_i (2 per non-zero offset), in that order
    jittered = network_proposer(trc, cycles=2, jitter=[0.3, 0.0])(x0, targets, horizons)
    assert jittered.shape == (6, 3, STEPS, 1)
    shifted = network_proposer(trc, cycles=2)(x0 - np.array([0.3, 0.0]), targets, horizons)
    assert np.allclose(jittered[:2], plans[:2]) and np.allclose(jittered[4:], shifted)
    with pytest.raises(ConfigError, match="select_jitter has 1 entries for 2 states"):
        network_proposer(trc, jitter=[0.1])(x0, targets, horizons)
    mlp = MLPPolicy(5, STEPS, 1, 16)
    assert network_proposer(mlp, cycles=4)(x0, targets, horizons).shape == (1, 3, STEPS, 1)
    linear = network_proposer(lambda p: np.ones((p.shape[0], STEPS, 1)))
    assert linear(x0, targets, horizons).shape == (1, 3, STEPS, 1)


def test_selection_needs_the_shrinking_horizon() -> None:
    assert structure(ClosedLoopConfig, {"select_cycles": 6}).select_cycles == 6
    with pytest.raises(ConfigError, match="select_cycles=6 needs horizon='shrinking'"):
        structure(ClosedLoopConfig, {"select_cycles": 6, "horizon": "receding"})
    with pytest.raises(ConfigError, match="select_cycles"):
        structure(ClosedLoopConfig, {"select_cycles": -1})
    with pytest.raises(ConfigError, match="select_jitter"):
        structure(ClosedLoopConfig, {"select_jitter": [0.1, -0.2]})


def test_the_ilqr_polish_only_replaces_a_plan_it_improves(vanderpol) -> None:
    system, x0, targets, horizons, hard, _ = vanderpol
    zeros = np.zeros_like(hard.controls)
    plain = SelectingPlanner(system, _fixed(zeros), margin=0.05)
    polished = SelectingPlanner(system, _fixed(zeros), margin=0.05, polish_iterations=5)
    before = simulated_outcome(system, x0, targets, plain(x0, targets, horizons, steps=STEPS), horizons / STEPS)
    after = simulated_outcome(system, x0, targets, polished(x0, targets, horizons, steps=STEPS), horizons / STEPS)
    assert polished.counts["polished"] == 3 and np.all(after[0] < before[0])
    # from the terminal-constrained optimum, iLQR (soft terminal cost) may only trade a little
    # terminal error for cost: whatever is kept still lands and costs no more
    exact = SelectingPlanner(system, _fixed(hard.controls), margin=0.05, polish_iterations=5)
    cost, error = simulated_outcome(system, x0, targets, exact(x0, targets, horizons, steps=STEPS), horizons / STEPS)
    assert np.all(error <= 0.05) and np.all(cost <= hard.costs * (1 + 1e-12))
    assert exact.counts["polished"] >= 1 and np.any(cost < hard.costs * (1 - 1e-6))
    # with a margin only x_N = r meets, that trade is refused, and the selected plan (the second
    # candidate here) is the one compared with its polish
    strict = SelectingPlanner(system, _fixed(zeros, hard.controls), margin=1e-6, polish_iterations=5)
    assert np.allclose(strict(x0, targets, horizons, steps=STEPS), hard.controls, rtol=0, atol=1e-12)
    assert strict.counts["polished"] == 0
    run_plain = closed_loop_rollout(system, x0, targets, horizons, plain, replan_every=5)
    run_polished = closed_loop_rollout(system, x0, targets, horizons, polished, replan_every=5)
    assert run_polished.costs.mean() < run_plain.costs.mean()


def test_combined_proposers_pool_their_candidates(vanderpol) -> None:
    from mlcore_trc_control.selection import combined_proposer

    system, x0, targets, horizons, hard, soft = vanderpol
    pooled = combined_proposer(_fixed(soft.controls), _fixed(hard.controls, np.zeros_like(hard.controls)))
    plans = pooled(x0, targets, horizons)
    assert plans.shape == (3, *hard.controls.shape)
    assert np.array_equal(plans[0], soft.controls) and np.array_equal(plans[1], hard.controls)
    # the landing plan is found among the pool, wherever it sits
    chosen = SelectingPlanner(system, pooled, margin=1e-6)(x0, targets, horizons, steps=STEPS)
    assert np.allclose(chosen, hard.controls, rtol=0, atol=1e-12)


def test_the_lqr_proposer_and_the_polish_settings(vanderpol) -> None:
    from mlcore_trc_control.lqr.systems import build_system
    from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation
    from mlcore_trc_control.selection import lqr_proposer

    system, x0, targets, horizons, *_ = vanderpol
    plans = lqr_proposer(system)(x0, targets, horizons / 2)
    assert plans.shape == (1, 3, STEPS, 1)
    assert np.allclose(plans[0], lqr_on_linearisation(system, x0, targets, horizons / 2).controls)
    with pytest.raises(ConfigError, match="select_polish_iterations=-1"):
        SelectingPlanner(system, _fixed(plans[0]), polish_iterations=-1)
    with pytest.raises(ConfigError, match="nonlinear"):
        SelectingPlanner(build_system("double_integrator"), _fixed(plans[0]), polish_iterations=2)


def test_selecting_planner_builds_the_candidates_and_settings_it_is_asked_for(vanderpol, trc) -> None:
    from mlcore_trc_control.lqr.systems import build_system
    from mlcore_trc_control.selection import lqr_proposer, selecting_planner

    system, x0, targets, horizons, *_ = vanderpol
    lqr = lqr_proposer(system)(x0, targets, horizons)
    # the defaults: the network's cycles, the kept tail, no LQR, no polish
    plain = selecting_planner(system, trc, cycles=3)
    assert plain.keep_previous and plain.margin == 0.05 and plain.polish_iterations == 0
    assert np.array_equal(plain.proposer(x0, targets, horizons), network_proposer(trc, cycles=3)(x0, targets, horizons))
    # every knob reaches the planner; the network's (clipped, jittered) candidates first, then the LQR's
    tuned = selecting_planner(
        system,
        trc,
        cycles=2,
        margin=0.2,
        clip_to=0.5,
        jitter=[0.3, 0.0],
        with_lqr=True,
        polish_iterations=3,
        keep_previous=False,
    )
    assert not tuned.keep_previous and tuned.margin == 0.2 and tuned.polish_iterations == 3
    plans = tuned.proposer(x0, targets, horizons)
    network = network_proposer(trc, cycles=2, clip_to=0.5, jitter=[0.3, 0.0])(x0, targets, horizons)
    assert plans.shape == (7, 3, STEPS, 1)
    assert np.array_equal(plans[:6], network) and np.array_equal(plans[6:], lqr)
    # no network: the LQR's plan alone; that needs the LQR
    alone = selecting_planner(system, None, cycles=0, with_lqr=True, polish_iterations=1)
    assert np.array_equal(alone.proposer(x0, targets, horizons), lqr) and alone.keep_previous
    with pytest.raises(ConfigError, match="without a network needs the LQR"):
        selecting_planner(system, None, cycles=0)
    # a linear system has no LQR candidate to add (the pipeline's select_with_lqr is for nonlinear ones)
    linear = build_system("double_integrator")
    policy = lambda p: np.ones((p.shape[0], linear.num_steps, linear.m))  # noqa: E731
    states, goals = np.ones((2, linear.n)), np.zeros((2, linear.n))
    times = np.full(2, linear.time_horizon)
    assert selecting_planner(linear, policy, cycles=0, with_lqr=True).proposer(states, goals, times).shape[0] == 1
    with pytest.raises(ConfigError, match="without a network needs the LQR"):
        selecting_planner(linear, None, cycles=0, with_lqr=True)


def test_selecting_planner_without_the_kept_tail_follows_worse_proposals(vanderpol) -> None:
    # the closed-loop effect of keep_previous through the builder: a network that proposes the
    # optimum first and noise afterwards is executed exactly only with the kept tail
    from mlcore_trc_control.selection import selecting_planner

    system, x0, targets, horizons, hard, _ = vanderpol
    rng = np.random.default_rng(0)
    calls = []

    def network(problems: np.ndarray) -> np.ndarray:
        calls.append(len(problems))
        return hard.controls if len(calls) == 1 else rng.uniform(-2.0, 2.0, hard.controls.shape)

    kept = closed_loop_rollout(system, x0, targets, horizons, selecting_planner(system, network, cycles=0))
    assert np.allclose(kept.controls, hard.controls, atol=1e-9)
    calls.clear()
    planner = selecting_planner(system, network, cycles=0, keep_previous=False)
    dropped = closed_loop_rollout(system, x0, targets, horizons, planner)
    assert dropped.costs.mean() > 1.05 * hard.costs.mean()


@pytest.fixture(scope="module")
def pendulum_two_routes():
    """A pendulum swing-up on its costly route (the first pass) and on its cheap one (the neighbour
    restarts find it through a mirrored neighbour), both on ``x_N = r``."""
    system = build_nonlinear_system("pendulum", num_steps=30)
    x0 = np.array([[-2.036, 0.624], [1.771, -0.732], [0.3, 0.1]])
    targets = np.zeros_like(x0)
    costly = multiple_shooting(system, x0, targets, neighbours=0)
    cheap = multiple_shooting(system, x0, targets, neighbours=1)
    assert cheap.costs[0] < 0.7 * costly.costs[0]
    return system, x0[:1], targets[:1], np.full(1, system.time_horizon), costly, cheap


def test_the_lqr_catch_takes_over_from_the_first_state_near_the_target(pendulum_two_routes) -> None:
    from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation
    from mlcore_trc_control.selection import lqr_catch

    system, x0, targets, horizons, _, cheap = pendulum_two_routes
    dt = horizons / system.num_steps
    plan, path = cheap.controls[:1], cheap.states[0]
    radius = 0.5
    arrival = int(np.flatnonzero(np.linalg.norm(path - targets[0], axis=1) <= radius)[0])
    caught = lqr_catch(system, x0, targets, plan, dt, radius)
    assert 0 < arrival < system.num_steps
    assert np.array_equal(caught[0, :arrival], plan[0, :arrival])  # its own controls until it gets there
    left = system.num_steps - arrival
    lqr = lqr_on_linearisation(attrs.evolve(system, num_steps=left), path[arrival][None], targets, left * dt)
    assert np.allclose(caught[0, arrival:], lqr.controls[0])  # the LQR's from there, over the steps left
    # a plan that never comes near the target is left alone
    far = np.zeros_like(plan)
    assert np.array_equal(lqr_catch(system, x0, targets, far, dt, radius), far)


def test_with_the_catch_an_early_arrival_beats_a_costlier_landing(pendulum_two_routes) -> None:
    system, x0, targets, horizons, costly, cheap = pendulum_two_routes
    # the cheap route, but idle after it is up: open loop it falls over again; the costly one lands
    idle = cheap.controls[:1].copy()
    up = int(np.flatnonzero(np.linalg.norm(cheap.states[0] - targets[0], axis=1) <= 1.0)[0])
    idle[0, up:] = 0.0
    plans = (idle, costly.controls[:1])
    _, error = simulated_outcome(system, x0, targets, idle, horizons / system.num_steps)
    assert error[0] > 1.0
    plain = SelectingPlanner(system, _fixed(*plans))(x0, targets, horizons)
    assert np.allclose(plain, costly.controls[:1])
    caught = SelectingPlanner(system, _fixed(*plans), catch=1.0)(x0, targets, horizons)
    assert np.allclose(caught[0, :up], cheap.controls[0, :up])
    cost, error = simulated_outcome(system, x0, targets, caught, horizons / system.num_steps)
    assert error[0] < 0.05 and cost[0] < 0.75 * costly.costs[0]
    with pytest.raises(ConfigError, match="select_catch=-1"):
        SelectingPlanner(system, _fixed(*plans), catch=-1.0)
    from mlcore_trc_control.lqr.systems import build_system

    with pytest.raises(ConfigError, match="nonlinear"):
        SelectingPlanner(build_system("double_integrator"), _fixed(*plans), catch=0.5)
