"""Tests of TinyRecursiveControl: sizes, overrides, shapes, rollout buffers, deep supervision."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore_trc_control.lqr.systems import build_system
from mlcore_trc_control.models.trc import TinyRecursiveControl, TRCConfig


@pytest.mark.parametrize(
    ("factory", "target"),
    [("create_small", 105_000), ("create_medium", 530_000), ("create_large", 2_600_000)],
)
def test_parameter_counts_near_targets(factory: str, target: int) -> None:
    model = getattr(TinyRecursiveControl, factory)()
    assert abs(model.num_parameters() - target) / target < 0.02


def test_overrides() -> None:
    model = TinyRecursiveControl.create_small(latent_dim=32, num_outer_cycles=5, num_inner_cycles=2)
    assert model.latent_dim == 32 and model.num_outer_cycles == 5 and model.num_inner_cycles == 2
    outs = model.forward_cycles(model.example_input(4))
    assert len(outs) == 5 and outs[-1].shape == (4, 15, 1)
    assert model.predict(model.example_input(3), num_outer_cycles=7).shape == (3, 15, 1)
    with pytest.raises(ConfigError, match="size"):
        structure(TRCConfig, {"size": "huge"}, where="model.")
    with pytest.raises(ConfigError, match="latent_dim"):
        structure(TRCConfig, {"latent_dim": 0}, where="model.")


def test_shapes_for_a_planar_system() -> None:
    model = TinyRecursiveControl(TRCConfig(size="small", state_dim=4, control_dim=2, num_steps=10))
    x = model.example_input(3)
    assert x.shape == (3, 9)
    assert model(x).shape == (3, 10, 2)


def test_rollout_and_cost_buffers_match_numpy() -> None:
    sys = build_system("planar_double_integrator", num_steps=15)
    model = TinyRecursiveControl(TRCConfig(size="small", state_dim=4, control_dim=2))
    model.set_system(sys)
    rng = np.random.default_rng(0)
    x0, r, u = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 15, 2))
    problems = torch.tensor(np.concatenate([x0, r, np.full((5, 1), sys.time_horizon)], 1), dtype=torch.float64)
    model.double()
    states = model.rollout(problems, torch.tensor(u))
    np.testing.assert_allclose(states.numpy(), sys.rollout(x0, u), rtol=1e-6, atol=1e-6)
    cost = model.lqr_cost(problems, torch.tensor(u)).detach().numpy()
    np.testing.assert_allclose(cost, sys.cost(sys.rollout(x0, u), u, r), rtol=1e-5)


@functools.cache
def _tiny_batch() -> tuple[torch.Tensor, torch.Tensor]:
    from mlcore_trc_control.data import generate_problem_set

    ps = generate_problem_set(build_system(), 32, 0, np.full(2, 2.0), np.full(2, 2.0))
    return ps.tensors()


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """Pay the one-off costs (SciPy import, first autograd pass) outside the timed tests."""
    problems, controls = _tiny_batch()
    model = TinyRecursiveControl.create_small(latent_dim=8, hidden_dim=8)
    model.compute_loss((problems, controls), None)[0].backward()


@pytest.mark.parametrize("gradient", ["per_cycle", "full", "last"])
def test_deep_supervision_loss_falls_on_a_tiny_batch(gradient: str) -> None:
    torch.manual_seed(0)
    problems, controls = _tiny_batch()
    model = TinyRecursiveControl.create_small(latent_dim=32, hidden_dim=64, num_inner_cycles=2, gradient=gradient)
    model.set_normalisation(problems, controls)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    first, extras = model.compute_loss((problems, controls), None)
    assert set(extras) == {"final_mse", "first_mse"}
    for _ in range(30):
        loss, _ = model.compute_loss((problems, controls), None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        final = model.compute_loss((problems, controls), None)[0]
    assert float(final) < 0.2 * float(first.detach())


def test_rollout_loss_terms_are_added() -> None:
    problems, controls = _tiny_batch()
    plain = TinyRecursiveControl.create_small()
    torch.manual_seed(0)
    with_rollout = TinyRecursiveControl.create_small(rollout_weight=1.0, cost_weight=1.0)
    with_rollout.load_state_dict(plain.state_dict())
    base = float(plain.compute_loss((problems, controls), None)[0].detach())
    extra = float(with_rollout.compute_loss((problems, controls), None)[0].detach())
    assert extra > base
    # the expert's own controls have zero terminal error and zero cost gap: only the MSE remains
    y = controls
    assert float(with_rollout._answer_loss(problems, y, controls, torch.nn.functional.mse_loss).detach()) < 1e-8


def test_per_cycle_gradient_detaches_between_cycles() -> None:
    problems, controls = _tiny_batch()
    model = TinyRecursiveControl.create_small(num_outer_cycles=2)
    outs = model.forward_cycles(problems, gradient="per_cycle")
    # the second answer's gradient must not reach answer_init (it only feeds the first cycle's carry)
    model.zero_grad()
    torch.nn.functional.mse_loss(outs[1], controls).backward()
    assert model.answer_init.weight.grad is None or float(model.answer_init.weight.grad.abs().sum()) == 0.0
    model.zero_grad()
    outs = model.forward_cycles(problems, gradient="full")
    torch.nn.functional.mse_loss(outs[1], controls).backward()
    assert float(model.answer_init.weight.grad.abs().sum()) > 0.0


def test_nonlinear_rollout_losses_run_through_the_simulator() -> None:
    """With a nonlinear system the rollout loss is the RK4 trajectory's, and set_system keeps the state_dict keys."""
    from mlcore_trc_control.nonlinear.systems import build_nonlinear_system

    system = build_nonlinear_system("vanderpol", num_steps=10)
    model = TinyRecursiveControl.create_small(
        num_steps=10, output_bound=True, terminal_projection=False, rollout_weight=1.0, num_outer_cycles=1
    )
    keys = set(model.state_dict())
    model.set_system(system)
    assert set(model.state_dict()) == keys
    problems = torch.tensor([[1.0, -0.5, 0.0, 0.0, 5.0], [-1.5, 1.0, 0.0, 0.0, 4.0]])
    controls = model(problems).detach()
    assert float(controls.abs().max()) <= 2.0
    ref = system.rollout(problems[:, :2].numpy(), controls.numpy(), np.array([5.0, 4.0]))
    assert np.allclose(model.rollout(problems, controls).numpy(), ref, atol=1e-4)
    target = torch.zeros(2, 10, 1)
    model.eval()
    loss, _ = model.compute_loss((problems, target))
    mse = float(torch.nn.functional.mse_loss(controls, target))
    terminal = float(np.mean(np.sum(ref[:, -1] ** 2, axis=1)))
    assert float(loss) == pytest.approx(mse + terminal, rel=1e-4)


def _halting_model() -> TinyRecursiveControl:
    torch.manual_seed(0)
    return TinyRecursiveControl.create_small(latent_dim=16, hidden_dim=32, num_outer_cycles=4).eval()


def test_adaptive_halting_uses_fewer_cycles_when_told_to() -> None:
    model = _halting_model()
    x = model.example_input(32)
    _, loose = model.predict_adaptive(x, tolerance=float("inf"))
    _, tight = model.predict_adaptive(x, tolerance=0.0)
    assert loose.tolist() == [1] * 32  # halts at min_cycles
    assert tight.tolist() == [4] * 32  # never halts early: every trained cycle
    _, two = model.predict_adaptive(x, tolerance=float("inf"), min_cycles=2)
    assert two.tolist() == [2] * 32
    # a looser tolerance never uses more cycles than a tighter one
    changes = []
    for tol in (1.0, 0.3, 0.1, 0.03, 0.01):
        changes.append(model.predict_adaptive(x, tolerance=tol)[1])
    for looser, tighter in itertools.pairwise(changes):
        assert torch.all(looser <= tighter)


def test_adaptive_halting_returns_the_answer_of_the_cycle_it_stopped_at() -> None:
    # each problem's controls must be exactly those of a fixed run with its own cycle count (a wrong
    # mask would mix cycles or keep refining halted problems)
    model = _halting_model()
    x = model.example_input(64)
    fixed = [model.predict(x, num_outer_cycles=c) for c in range(1, 5)]
    changes = [
        float(((fixed[c] - fixed[c - 1]) / model.control_scale).pow(2).mean(dim=(1, 2)).sqrt().median())
        for c in (1, 2, 3)
    ]
    tol = float(np.median(changes))
    controls, used = model.predict_adaptive(x, tolerance=tol)
    assert len(set(used.tolist())) > 1, "the tolerance should split the batch"
    for i, c in enumerate(used.tolist()):
        assert torch.allclose(controls[i], fixed[c - 1][i], atol=1e-6)
