"""Tests of mlcore_trc_control.closed_loop_training: the differentiable closed loop and its fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcore_trc_control.closed_loop import closed_loop_rollout, policy_planner, resample_plan
from mlcore_trc_control.closed_loop_training import (
    FinetuneConfig,
    closed_loop_finetune,
    closed_loop_loss,
    closed_loop_torch,
    expert_tails,
    plan_weights,
)
from mlcore_trc_control.data import LQRProblemSet
from mlcore_trc_control.models.mlp import MLPPolicy
from mlcore_trc_control.nonlinear.simulator import TorchSimulator
from mlcore_trc_control.nonlinear.systems import build_nonlinear_system

STEPS = 12


@pytest.fixture(scope="module")
def pendulum():
    return build_nonlinear_system("pendulum", num_steps=STEPS, time_horizon=2.0)


def _problems(system, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x0 = np.stack([rng.uniform(-1.0, 1.0, count), rng.uniform(-1.0, 1.0, count)], axis=1)
    horizons = rng.uniform(1.5, 2.5, count)  # per-problem horizons: dt_i = T_i / N
    return np.concatenate([x0, np.zeros_like(x0), horizons[:, None]], axis=1)


def _policy(system, seed: int = 0, gain: float = 3.0) -> MLPPolicy:
    torch.manual_seed(seed)
    net = MLPPolicy(5, STEPS, 1, 16)
    with torch.no_grad():
        net.scale.fill_(gain)  # plans of a few units, so the box binds sometimes
    return net


def _problem_set(system, problems: np.ndarray, optimal_costs: np.ndarray) -> LQRProblemSet:
    count, n = problems.shape[0], system.n
    zeros = np.zeros((count, STEPS, 1))
    return LQRProblemSet(
        system=system,
        initial_states=problems[:, :n],
        target_states=problems[:, n : 2 * n],
        control_sequences=zeros,
        state_trajectories=np.zeros((count, STEPS + 1, n)),
        optimal_costs=optimal_costs,
        lqr_control_sequences=zeros,
        lqr_costs=optimal_costs,
        lqr_terminal_errors=np.zeros(count),
        time_horizons=problems[:, 2 * n],
    )


def test_plan_weights_match_the_numpy_resampling() -> None:
    rng = np.random.default_rng(0)
    plan = rng.normal(size=(3, 7, 2))
    plan_dt = np.array([0.1, 0.25, 0.05])
    start, dt = np.array([0.0, 0.3, 0.33]), np.array([0.2, 0.1, 0.2])  # the last one runs past the plan
    expected = resample_plan(plan, plan_dt, start, dt)
    weights = plan_weights(7, torch.as_tensor(plan_dt), torch.as_tensor(start), torch.as_tensor(dt))
    got = torch.einsum("bk,bkm->bm", weights, torch.as_tensor(plan)).numpy()
    assert np.allclose(got, expected, atol=1e-12)
    assert np.allclose(weights.sum(dim=1).numpy(), 1.0)


@pytest.mark.parametrize("replan_every", [1, 5])
def test_the_torch_closed_loop_is_the_numpy_closed_loop(pendulum, replan_every: int) -> None:
    # the same policy, problems and box: same executed controls and states as closed_loop_rollout
    # (a wrong remaining horizon, plan start or clip order shows here)
    problems = _problems(pendulum, 6)
    net = _policy(pendulum, gain=30.0)
    expected = closed_loop_rollout(
        pendulum,
        problems[:, :2],
        problems[:, 2:4],
        problems[:, 4],
        policy_planner(net, clip_to=4.0),
        replan_every=replan_every,
    )
    assert np.abs(expected.controls).max() == pytest.approx(4.0)  # the box binds somewhere
    with torch.no_grad():
        states, controls = closed_loop_torch(
            net,
            TorchSimulator(pendulum),
            torch.as_tensor(problems, dtype=torch.float32),
            num_steps=STEPS,
            replan_every=replan_every,
            clip_to=4.0,
        )
    # float32 network and simulator against the float64 NumPy plant (the network runs in float32 there too)
    assert np.allclose(controls.numpy(), expected.controls, atol=1e-3)
    assert np.allclose(states.numpy(), expected.states, atol=1e-3)


def test_the_gradient_reaches_the_network_through_the_whole_closed_loop(pendulum) -> None:
    # autograd against central finite differences of the loss in two weights: detaching the state
    # at a re-plan (or the plan) cuts a path and breaks the match
    problems = torch.as_tensor(_problems(pendulum, 4, seed=1))
    net = _policy(pendulum, gain=0.5).double()  # inside the box: the clamp does not cut gradients
    sim = TorchSimulator(pendulum).double()
    costs = torch.full((4,), 50.0, dtype=torch.float64)

    def loss() -> torch.Tensor:
        return closed_loop_loss(net, sim, problems, costs, num_steps=STEPS, replan_every=3, terminal_weight=10.0)[0]

    net.zero_grad()
    loss().backward()
    for weight, index in ((net.net[0].weight, (3, 1)), (net.net[2].weight, (5, 7))):
        analytic = float(weight.grad[index])
        with torch.no_grad():
            weight[index] += 1e-6
            up = float(loss())
            weight[index] -= 2e-6
            down = float(loss())
            weight[index] += 1e-6
        numeric = (up - down) / 2e-6
        assert abs(numeric) > 1e-4
        assert analytic == pytest.approx(numeric, rel=1e-5)


def test_the_loss_is_the_relative_cost_plus_the_terminal_term(pendulum) -> None:
    problems = torch.as_tensor(_problems(pendulum, 3, seed=2))
    net = _policy(pendulum).double()
    sim = TorchSimulator(pendulum).double()
    costs = torch.tensor([40.0, 80.0, 120.0], dtype=torch.float64)
    with torch.no_grad():
        states, controls = closed_loop_torch(net, sim, problems, num_steps=STEPS, replan_every=2, clip_to=4.0)
        loss, parts = closed_loop_loss(
            net, sim, problems, costs, num_steps=STEPS, replan_every=2, clip_to=4.0, terminal_weight=7.0
        )
    cost = pendulum.cost(states.numpy(), controls.numpy(), problems[:, 2:4].numpy())
    miss = np.linalg.norm(states[:, -1].numpy(), axis=1)
    assert float(loss) == pytest.approx(cost.mean() / costs.numpy().mean() - 1 + 7.0 * np.mean(miss**2), rel=1e-9)
    assert parts["terminal_error"] == pytest.approx(miss.mean(), rel=1e-6)
    assert parts["success_rate"] == pytest.approx(np.mean(miss < 0.1))


def test_fine_tuning_lowers_the_closed_loop_loss_and_keeps_the_best_iterate(pendulum) -> None:
    problems = _problems(pendulum, 40, seed=3)
    train = _problem_set(pendulum, problems, np.full(40, 100.0))
    net = _policy(pendulum, gain=1.0)
    cfg = FinetuneConfig(
        steps=40, batch_size=16, lr=3e-2, replan_every=4, curriculum=0.0, eval_every=10, eval_problems=12
    )
    history = closed_loop_finetune(net, train, cfg, clip_to=4.0)
    assert [row["step"] for row in history] == [0, 10, 20, 30, 40]
    assert min(row["loss"] for row in history[1:]) < 0.6 * history[0]["loss"]
    # the model left in place is the best held-out iterate
    held = torch.as_tensor(problems[-12:], dtype=torch.float32)
    with torch.no_grad():
        final, _ = closed_loop_loss(
            net,
            TorchSimulator(pendulum),
            held,
            torch.full((12,), 100.0),
            num_steps=STEPS,
            replan_every=4,
            clip_to=4.0,
            terminal_weight=cfg.terminal_weight,
        )
    assert float(final) == pytest.approx(min(row["loss"] for row in history), rel=1e-5)


def test_zero_steps_leave_the_model_unchanged(pendulum) -> None:
    train = _problem_set(pendulum, _problems(pendulum, 8), np.ones(8))
    net = _policy(pendulum)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert closed_loop_finetune(net, train, FinetuneConfig(steps=0)) == []
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.fixture(scope="module")
def vanderpol_set():
    from mlcore_trc_control.data import generate_problem_set

    system = build_nonlinear_system("vanderpol", num_steps=15, time_horizon=3.0)
    return generate_problem_set(system, 4, 0, np.array([2.0, 2.0]), np.zeros(2))


def test_expert_tails_are_the_tail_problems_of_the_expert(vanderpol_set) -> None:
    tail = expert_tails(vanderpol_set, 10)
    assert np.allclose(tail.initial_states, vanderpol_set.state_trajectories[:, 10])
    assert np.allclose(tail.horizons(), 3.0 * 5 / 15)
    # the cost-to-go of the expert's remaining trajectory
    states, controls = vanderpol_set.state_trajectories[:, 10:], vanderpol_set.control_sequences[:, 10:]
    assert np.allclose(tail.optimal_costs, vanderpol_set.system.cost(states, controls, vanderpol_set.target_states))
    # the labels are the remaining 5 controls on the network's grid of 15 steps of (T - t)/15: each held
    # 3 fine steps, so rolling them out over the tail's horizon reaches the target as the expert does
    assert np.allclose(tail.control_sequences[:, ::3], controls)
    final = tail.rollout(tail.control_sequences)[:, -1]
    assert np.linalg.norm(final - tail.target_states, axis=1).max() < 1e-3
    assert expert_tails(vanderpol_set, 0) is vanderpol_set
    with pytest.raises(ValueError, match="start=15"):
        expert_tails(vanderpol_set, 15)


def test_the_curriculum_starts_at_the_last_replan_and_ends_at_x0(pendulum, monkeypatch) -> None:
    import mlcore_trc_control.closed_loop_training as clt

    seen: list[int] = []
    original = clt.closed_loop_loss

    def spy(policy, simulator, problems, optimal_costs, **kwargs):
        if policy.training:
            seen.append(kwargs["num_steps"])
        return original(policy, simulator, problems, optimal_costs, **kwargs)

    monkeypatch.setattr(clt, "closed_loop_loss", spy)
    rng = np.random.default_rng(4)
    problems = _problems(pendulum, 20, seed=4)
    train = _problem_set(pendulum, problems, np.full(20, 10.0))
    train.state_trajectories[:] = rng.uniform(-0.5, 0.5, train.state_trajectories.shape)
    cfg = FinetuneConfig(steps=20, batch_size=8, replan_every=4, curriculum=0.5, eval_every=20, eval_problems=4)
    closed_loop_finetune(_policy(pendulum), train, cfg)
    # re-plan points 0, 4, 8 of 12 steps: first only the last (4 plant steps left), then all
    assert seen[:2] == [4, 4]
    assert set(seen[10:]) <= {4, 8, 12} and 12 in seen[10:]
    assert 12 not in seen[:3]
