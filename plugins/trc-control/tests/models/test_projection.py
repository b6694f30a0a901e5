"""Tests of mlcore_trc_control.models.projection: exact terminal state, box kept, feasible points fixed."""

from __future__ import annotations

import numpy as np
import torch

from mlcore_trc_control.lqr.solvers import terminal_constrained_optimum
from mlcore_trc_control.lqr.systems import build_system
from mlcore_trc_control.models.projection import TerminalProjection


def _problems(sys, num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x0, r = rng.uniform(-2, 2, (num, sys.n)), rng.uniform(-2, 2, (num, sys.n))
    return x0, r, np.concatenate([x0, r, np.full((num, 1), sys.time_horizon)], axis=1)


def _project(sys, problems: np.ndarray, controls: np.ndarray, iterations: int = 20) -> np.ndarray:
    proj = TerminalProjection(sys.n, sys.m, sys.num_steps, iterations).double()
    proj.set_system(sys)
    return proj(torch.as_tensor(problems), torch.as_tensor(controls)).detach().numpy()


def test_unbounded_projection_reaches_the_target_exactly_with_the_least_weighted_change() -> None:
    # two coupled inputs with unequal weights, so the R-weighting matters
    sys = build_system("custom", a=[[1.0, 0.1], [0.0, 1.0]], b=[[0.5, 0.2], [0.1, 1.0]], q=[1, 1], r=[0.1, 0.5])
    x0, r, problems = _problems(sys, 50)
    raw = np.random.default_rng(1).normal(size=(50, sys.num_steps, sys.m))
    u = _project(sys, problems, raw)
    assert np.abs(sys.rollout(x0, u)[:, -1] - r).max() < 1e-9
    # least R-weighted change: any other exact solution differs by a null-space move, which costs more
    weights = np.tile(np.diag(sys.R), sys.num_steps)
    dim = sys.num_steps * sys.m
    g = sys.rollout(np.zeros((dim, sys.n)), np.eye(dim).reshape(dim, sys.num_steps, sys.m))[:, -1].T
    null = np.linalg.svd(g)[2][sys.n :]
    delta = (u - raw).reshape(50, -1)
    rng = np.random.default_rng(4)
    for _ in range(20):
        move = rng.normal(scale=0.01, size=null.shape[0]) @ null
        assert np.all(((delta + move) ** 2 * weights).sum(1) >= (delta**2 * weights).sum(1) - 1e-12)


def test_boxed_projection_keeps_the_box_and_nearly_reaches_the_target() -> None:
    sys = build_system()
    x0, r, problems = _problems(sys, 200, seed=2)
    opt = terminal_constrained_optimum(sys, x0, r).controls
    noisy = opt + np.random.default_rng(3).normal(scale=0.3, size=opt.shape)
    u = _project(sys, problems, noisy, iterations=30)
    assert np.abs(u).max() <= sys.control_limit
    err = np.linalg.norm(sys.rollout(x0, u)[:, -1] - r, axis=1)
    assert err.max() < 1e-3 and err.mean() < 0.05 * np.linalg.norm(sys.rollout(x0, noisy)[:, -1] - r, axis=1).mean()
    # a feasible sequence (the optimum itself) is a fixed point
    np.testing.assert_allclose(_project(sys, problems, opt), opt, atol=1e-9)


def test_without_a_system_the_projection_is_the_identity() -> None:
    proj = TerminalProjection(2, 1, 15)
    u = torch.randn(4, 15, 1)
    assert torch.equal(proj(torch.randn(4, 5), u), u)


def test_a_checkpoint_from_before_the_projection_loads_as_the_identity() -> None:
    from mlcore_trc_control.models.trc import TinyRecursiveControl

    old = TinyRecursiveControl.create_small(latent_dim=8, hidden_dim=8, terminal_projection=False)
    new = TinyRecursiveControl.create_small(latent_dim=8, hidden_dim=8)
    new.load_state_dict(old.state_dict())  # strict: the projection's buffers are filled in
    x = old.example_input(4)
    assert torch.allclose(new(x), old(x))
