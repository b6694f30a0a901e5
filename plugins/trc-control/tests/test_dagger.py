"""Tests of mlcore_trc_control.dagger: visited states, expert relabelling, aggregation, rounds."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch

from mlcore_trc_control.closed_loop import policy_planner
from mlcore_trc_control.dagger import (
    DaggerConfig,
    concat_problem_sets,
    dagger,
    fine_tune,
    label_tails,
    relabel,
    visited_states,
)
from mlcore_trc_control.data import generate_problem_set
from mlcore_trc_control.models.mlp import MLPPolicy
from mlcore_trc_control.nonlinear.expert import multiple_shooting
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system


@pytest.fixture(scope="module")
def vanderpol_set():
    system = build_nonlinear_system("vanderpol", num_steps=15, time_horizon=3.0)
    return generate_problem_set(system, 12, 0, np.array([2.0, 2.0]), np.zeros(2))


def test_visited_states_carry_the_remaining_horizon() -> None:
    states = np.arange(2 * 11 * 2, dtype=float).reshape(2, 11, 2)
    targets = np.array([[0.0, 0.0], [1.0, 1.0]])
    horizons = np.array([5.0, 4.0])
    x, r, t = visited_states(states, targets, horizons, 40, "shrinking", np.random.default_rng(0))
    assert x.shape == (40, 2)
    for xi, ri, ti in zip(x, r, t):
        row = 0 if ri[0] == 0.0 else 1
        step = int(np.flatnonzero((states[row] == xi).all(axis=1))[0])
        assert 1 <= step <= 9
        assert ti == pytest.approx(horizons[row] * (1 - step / 10))
    _, _, t_receding = visited_states(states, targets, horizons, 40, "receding", np.random.default_rng(0))
    assert set(np.round(t_receding, 6)) <= {5.0, 4.0}


def test_visited_states_skip_diverged_and_far_away_states() -> None:
    states = np.zeros((2, 6, 2))
    states[1, 2:] = np.inf
    x, _, _ = visited_states(states, np.zeros((2, 2)), np.ones(2), 10, "shrinking", np.random.default_rng(0))
    assert len(x) == 10 and np.all(np.isfinite(x))
    states = np.zeros((2, 6, 2))
    states[1, 1:, 0] = 7.0  # the second trajectory wanders beyond the bound in its first coordinate
    x, _, _ = visited_states(
        states, np.zeros((2, 2)), np.ones(2), 10, "shrinking", np.random.default_rng(0), bound=np.array([6.0, 6.0])
    )
    assert len(x) == 10 and np.all(x == 0.0)


def test_relabel_gives_the_expert_optimum_from_the_visited_states(vanderpol_set) -> None:
    system = vanderpol_set.system
    x = np.array([[0.7, -0.4], [-1.2, 0.9]])
    labels = relabel(system, x, np.zeros((2, 2)), np.array([2.0, 1.5]))
    assert labels.metadata["status"] == ["terminal", "terminal"]
    assert np.allclose(labels.initial_states, x)
    # the labels are the expert's controls: from x they reach the target under the true dynamics
    states = system.rollout(x, labels.control_sequences, np.array([2.0, 1.5]))
    assert np.linalg.norm(states[:, -1], axis=1).max() < 1e-4
    assert np.allclose(labels.horizons(), [2.0, 1.5])
    assert labels.optimal_costs == pytest.approx(system.cost(states, labels.control_sequences, np.zeros((2, 2))))


def test_label_tails_are_the_labels_from_a_step_on_over_the_new_horizon(vanderpol_set) -> None:
    problems, steps = vanderpol_set, vanderpol_set.system.num_steps
    rows = np.array([0, 3, 5])
    same = label_tails(problems, rows, np.zeros(3, dtype=int), problems.horizons()[rows])
    assert np.allclose(same[0], problems.control_sequences[rows]) and np.allclose(
        same[1], problems.state_trajectories[rows]
    )
    # from step k over the time left (the shrinking horizon): the label's state at k first, its last
    # state last, and the same control impulse over the remaining time
    cols = np.array([4, 7, 11])
    left = problems.horizons()[rows] * (1 - cols / steps)
    controls, states = label_tails(problems, rows, cols, left)
    assert controls.shape == (3, steps, 1) and states.shape == (3, steps + 1, 2)
    assert np.allclose(states[:, 0], problems.state_trajectories[rows, cols])
    assert np.allclose(states[:, -1], problems.state_trajectories[rows, -1])
    old_dt = problems.horizons()[rows] / steps
    for i, (b, k) in enumerate(zip(rows, cols, strict=True)):
        impulse = problems.control_sequences[b, k:].sum() * old_dt[i]
        assert controls[i].sum() * left[i] / steps == pytest.approx(impulse)


def test_a_label_tail_keeps_dagger_labels_on_the_labels_route() -> None:
    # two pendulum swing-ups on their cheap route (found by the neighbour restarts); the states two
    # steps in, a little off it: started from the LQR, zeros or rollouts, the expert takes a swing-up
    # with one more pump; started from the label's tail on its trajectory, it continues the route
    system = build_nonlinear_system("pendulum", num_steps=30)
    x0, targets = np.array([[-2.036, 0.624], [1.771, -0.732]]), np.zeros((2, 2))
    horizons = np.full(2, system.time_horizon)
    found = multiple_shooting(system, x0, targets, neighbours=1)
    labels = relabel(system, x0, targets, horizons, trajectory_starts=(found.controls, found.states))
    assert np.allclose(labels.optimal_costs, found.costs)  # the solution itself, as a start, is kept
    rows, cols = np.array([0, 1]), np.array([2, 2])
    x = found.states[rows, cols] + np.array([0.0, 0.05])
    left = horizons * (1 - cols / system.num_steps)
    plain = relabel(system, x, targets, left)
    tails = relabel(system, x, targets, left, trajectory_starts=label_tails(labels, rows, cols, left))
    assert tails.metadata["status"] == ["terminal", "terminal"]
    assert np.all(tails.optimal_costs < 1.05 * found.costs) and np.all(plain.optimal_costs > 1.5 * tails.optimal_costs)


def test_concat_keeps_every_problem_and_its_horizon(vanderpol_set) -> None:
    system = vanderpol_set.system
    extra = relabel(system, np.array([[0.5, 0.5]]), np.zeros((1, 2)), np.array([1.0]))
    both = concat_problem_sets(vanderpol_set, extra)
    assert len(both) == len(vanderpol_set) + 1
    assert both.horizons()[-1] == 1.0 and np.allclose(both.horizons()[:-1], 3.0)
    assert np.allclose(both.control_sequences[-1], extra.control_sequences[0])


def test_fine_tune_lowers_the_loss(vanderpol_set) -> None:
    torch.manual_seed(0)
    x, y = vanderpol_set.tensors()
    model = MLPPolicy(5, 15, 1, 32)
    model.set_normalisation(x, y)
    losses = fine_tune(model, vanderpol_set, epochs=30, lr=3e-3, batch_size=4)
    assert losses[-1] < 0.5 * losses[0]


def test_dagger_rounds_add_relabelled_states(vanderpol_set) -> None:
    torch.manual_seed(0)
    x, y = vanderpol_set.tensors()
    model = MLPPolicy(5, 15, 1, 16)
    model.set_normalisation(x, y)
    cfg = DaggerConfig(rounds=2, problems_per_round=4, states_per_round=5, epochs=1, replan_every=5)
    _, history = dagger(model, vanderpol_set, cfg, clip_to=2.0)
    assert [h["round"] for h in history] == [1, 2]
    assert history[0]["labels_added"] + history[0]["labels_dropped"] == 5
    assert history[0]["labels_added"] >= 4  # only IPOPT failures are dropped
    assert (
        history[1]["training_problems"] == len(vanderpol_set) + history[0]["labels_added"] + history[1]["labels_added"]
    )


def test_dagger_runs_its_closed_loops_with_the_given_planner(vanderpol_set, monkeypatch) -> None:
    import mlcore_trc_control.dagger as dagger_module

    given = []
    real_relabel = dagger_module.relabel

    tails = []

    def spy(system, x0, targets, horizons, **kwargs):
        given.append(kwargs.get("warm_starts"))
        tails.append(kwargs.get("trajectory_starts"))
        return real_relabel(system, x0, targets, horizons, **kwargs)

    monkeypatch.setattr(dagger_module, "relabel", spy)
    torch.manual_seed(0)
    x, y = vanderpol_set.tensors()
    model = MLPPolicy(5, 15, 1, 16)
    model.set_normalisation(x, y)
    inner = policy_planner(model, clip_to=2.0)
    seen = {"calls": 0, "resets": 0, "batches": set()}

    class Recording:
        def __call__(self, states, targets, horizons, steps=None):
            seen["calls"] += 1
            seen["batches"].add(len(states))
            return inner(states, targets, horizons, steps)

        def reset(self) -> None:
            seen["resets"] += 1

    cfg = DaggerConfig(rounds=2, problems_per_round=3, states_per_round=4, epochs=1, replan_every=5)
    _, history = dagger(model, vanderpol_set, cfg, clip_to=2.0, planner=Recording())
    # per round: a reset, 15 steps / re-plan every 5 = 3 re-plans of the 3 problems; then a reset
    # and one plan from the 4 visited states (the learner's warm start for the expert)
    assert seen["resets"] == 4 and seen["calls"] == 8 and seen["batches"] == {3, 4}
    assert len(history) == 2 and history[0]["labels_added"] >= 3
    # the learner's plans from the visited states reach the expert as warm starts
    assert [None if g is None else g.shape for g in given] == [(4, 15, 1), (4, 15, 1)]
    # and so do the sampled problems' own labels from the visited steps on, with their trajectories
    assert [(u.shape, x.shape) for u, x in tails] == [((4, 15, 1), (4, 16, 2))] * 2
    seen.update(calls=0, resets=0, batches=set())
    tails.clear()
    dagger(
        model,
        vanderpol_set,
        attrs.evolve(cfg, learner_start=False, label_start=False),
        clip_to=2.0,
        planner=Recording(),
    )
    assert seen["resets"] == 2 and seen["calls"] == 6 and seen["batches"] == {3}
    assert tails == [None, None]
