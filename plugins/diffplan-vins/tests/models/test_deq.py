"""Deep-equilibrium planners: the root finders, the implicit gradient, equivariance, learning."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from mlcore_diffplan_vins.models import d4
from mlcore_diffplan_vins.models.deq import DEVIN, DESymVIN, anderson, equilibrium, forward_iteration, solve
from mlcore_diffplan_vins.models.planner_config import DESymVINConfig, DEVINConfig

Mazes = tuple[torch.Tensor, torch.Tensor]


def _linear_problem() -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """``x = A x + b`` per sample with spectral radius 0.9, and its exact solution."""
    torch.manual_seed(0)
    n = 20
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    a = q @ torch.diag(torch.linspace(-0.9, 0.9, n, dtype=torch.float64)) @ q.T
    b = torch.randn(3, n, dtype=torch.float64)
    exact = torch.linalg.solve(torch.eye(n, dtype=torch.float64) - a, b.T).T
    return (lambda x: x @ a.T + b), exact


@pytest.mark.parametrize("solver", ["anderson", "forward"])
def test_solvers_find_the_fixed_point_of_a_contraction(solver: str) -> None:
    f, exact = _linear_problem()
    x, stats = solve(f, torch.zeros_like(exact), solver=solver, max_iter=2000, tol=1e-10)
    assert torch.allclose(x, exact, atol=1e-8)
    assert stats["converged"] == 1.0 and stats["residual"] < 1e-10


def test_anderson_needs_far_fewer_evaluations_than_plain_iteration() -> None:
    f, exact = _linear_problem()
    _, fast = anderson(f, torch.zeros_like(exact), max_iter=2000, tol=1e-8, memory=5)
    _, slow = forward_iteration(f, torch.zeros_like(exact), max_iter=2000, tol=1e-8)
    assert fast["iterations"] * 3 < slow["iterations"], (fast, slow)


def test_stats_report_a_solve_that_ran_out_of_iterations() -> None:
    f, exact = _linear_problem()
    _, stats = solve(f, torch.zeros_like(exact), solver="anderson", max_iter=3, tol=1e-12)
    assert stats == {"iterations": 3.0, "residual": stats["residual"], "converged": 0.0}
    assert stats["residual"] > 1e-12


def _contractive_devin(tol: float = 1e-12) -> DEVIN:
    torch.manual_seed(1)
    model = DEVIN(DEVINConfig(hidden_channels=4, q_channels=3, tol=tol, max_iter=500)).double()
    with torch.no_grad():  # |W_v|_1 < 1 per output channel: the backup is a contraction
        model.q_v.weight.uniform_(-0.1, 0.1)
    return model


def test_implicit_gradient_passes_gradcheck_wrt_the_maps() -> None:
    model = _contractive_devin()
    maps = torch.rand(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x), (maps,), atol=1e-6, fast_mode=True)


def _unrolled_devin_logits(model: DEVIN, maps: torch.Tensor, steps: int = 300) -> torch.Tensor:
    """DE-VIN's output by plain unrolled iteration with ordinary autograd through every step."""
    q_r = model.q_r(model.r(model.h(maps)))
    v = torch.zeros_like(q_r[:, :1])
    for _ in range(steps):
        v = (q_r + F.conv2d(v, model.q_v.weight, padding=1)).amax(dim=1, keepdim=True)
    return model.policy(q_r + F.conv2d(v, model.q_v.weight, padding=1))


def test_implicit_parameter_gradient_equals_the_unrolled_gradient() -> None:
    model = _contractive_devin()
    torch.manual_seed(2)
    maps = torch.rand(2, 2, 7, 7, dtype=torch.float64)
    upstream = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    params = list(model.parameters())
    implicit = torch.autograd.grad((model(maps) * upstream).sum(), params)
    unrolled = torch.autograd.grad((_unrolled_devin_logits(model, maps) * upstream).sum(), params)
    for got, want in zip(implicit, unrolled):
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-9), (got - want).abs().max()
    stats = model.last_convergence
    assert stats is not None and stats["converged"] == 1.0 and stats["backward_converged"] == 1.0
    assert stats["backward_iterations"] >= 2


def test_equilibrium_without_grad_returns_the_solution_and_stats() -> None:
    f, exact = _linear_problem()
    stats: dict[str, float] = {}
    with torch.no_grad():
        x = equilibrium(f, torch.zeros_like(exact), solver="anderson", max_iter=500, tol=1e-10, stats=stats)
    assert torch.allclose(x, exact, atol=1e-8) and stats["converged"] == 1.0


def test_de_symvin_is_equivariant_on_random_inputs_and_real_mazes(mazes_9: Mazes) -> None:
    torch.manual_seed(3)
    model = DESymVIN(DESymVINConfig(hidden_channels=3, q_channels=4, tol=1e-12, max_iter=400)).double()
    with torch.no_grad():
        model.q.weight[:, 1].uniform_(-0.01, 0.01)
    for maps in (torch.rand(2, 2, 9, 9, dtype=torch.float64), mazes_9[0][:4].double()):
        with torch.no_grad():
            y = model(maps)
            assert model.last_convergence is not None and model.last_convergence["converged"] == 1.0
            for g in range(8):
                assert (model(d4.transform(maps, g)) - d4.transform_actions(y, g)).abs().max() < 1e-8, g


def test_de_symvin_gradient_passes_gradcheck() -> None:
    torch.manual_seed(4)
    model = DESymVIN(DESymVINConfig(hidden_channels=2, q_channels=2, tol=1e-12, max_iter=400)).double()
    with torch.no_grad():
        model.q.weight[:, 1].uniform_(-0.01, 0.01)
    maps = torch.rand(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x), (maps,), atol=1e-6, fast_mode=True)


@pytest.mark.parametrize(
    ("cls", "config"),
    [
        (DEVIN, DEVINConfig(hidden_channels=8, q_channels=8, max_iter=15)),
        (DESymVIN, DESymVINConfig(hidden_channels=2, q_channels=4, max_iter=15)),
    ],
)
def test_loss_falls_on_a_tiny_maze_batch(
    cls: type, config: object, mazes_9: Mazes, train_losses: Callable[..., list[float]]
) -> None:
    torch.manual_seed(5)
    model = cls(config)
    losses = train_losses(model, mazes_9[0][:8], mazes_9[1][:8], steps=25)
    assert losses[-1] < 0.9 * losses[0], losses[::8]
    assert set(model.last_convergence) >= {"iterations", "residual", "backward_iterations", "backward_residual"}
