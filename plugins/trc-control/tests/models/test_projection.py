"""Tests of mlcore_trc_control.models.projection: exact terminal state, box kept, feasible points fixed."""

from __future__ import annotations

import numpy as np
import pytest
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


# ---------------------------------------------------------------- horizon-aware projection


def _oscillator():
    # a damped oscillator: its step expm needs the Taylor series and 2 squarings (the double
    # integrator's block is nilpotent, so a truncated series would still be exact there)
    return build_system(
        "custom", a=[[0.0, 1.0], [-4.0, -0.5]], b=[[0.0], [1.0]], q=[1, 1], r=[0.1], continuous=True, time_horizon=5.0
    )


def _ranged(sys, num: int, low: float, high: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x0, r = rng.uniform(-2, 2, (num, sys.n)), rng.uniform(-2, 2, (num, sys.n))
    horizons = np.concatenate([[low, high], rng.uniform(low, high, num - 2)])
    return x0, r, np.concatenate([x0, r, horizons[:, None]], axis=1)


def _terminal_errors(sys, x0: np.ndarray, r: np.ndarray, problems: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``|x_N - r|`` of each problem under the exact discretisation of its own horizon."""
    return np.array(
        [
            np.abs(sys.with_horizon(t).rollout(x0[i : i + 1], u[i : i + 1])[0, -1] - r[i]).max()
            for i, t in enumerate(problems[:, -1])
        ]
    )


def _horizon_projection(sys, horizons, iterations: int = 20) -> TerminalProjection:
    proj = TerminalProjection(sys.n, sys.m, sys.num_steps, iterations, horizons)
    proj.set_system(sys)
    return proj


@pytest.mark.parametrize("name", ["double_integrator", "oscillator", "planar_double_integrator"])
def test_horizon_aware_projection_reaches_each_target_under_its_own_discretisation(name: str) -> None:
    sys = _oscillator() if name == "oscillator" else build_system(name, control_limit=0.0)
    x0, r, problems = _ranged(sys, 40, 4.0, 6.0)
    raw = np.random.default_rng(1).normal(size=(40, sys.num_steps, sys.m))
    proj = _horizon_projection(sys, (4.0, 6.0))
    u = proj(torch.as_tensor(problems), torch.as_tensor(raw)).numpy()
    assert _terminal_errors(sys, x0, r, problems, u).max() < 1e-12
    # a float32 model: inputs and outputs in float32, the maps in float64 inside
    u32 = proj(torch.as_tensor(problems, dtype=torch.float32), torch.as_tensor(raw, dtype=torch.float32))
    assert u32.dtype == torch.float32
    assert _terminal_errors(sys, x0, r, problems, u32.double().numpy()).max() < 1e-5
    # the nominal discretisation is wrong for the other horizons: the test can tell them apart
    fixed = _project(sys, problems, raw)
    assert _terminal_errors(sys, x0, r, problems, fixed).max() > 1e-2


def test_horizon_aware_projection_equals_the_fixed_one_on_the_nominal_horizon() -> None:
    for sys in (build_system(), _oscillator()):
        problems = _problems(sys, 30, seed=5)[2]  # every T = the system's nominal 5 s
        raw = np.random.default_rng(6).normal(size=(30, sys.num_steps, sys.m))
        proj = _horizon_projection(sys, (4.0, 6.0))
        aware = proj(torch.as_tensor(problems), torch.as_tensor(raw)).numpy()
        np.testing.assert_allclose(aware, _project(sys, problems, raw), atol=1e-9)


def test_horizon_aware_projection_keeps_the_box_and_nearly_reaches_the_target() -> None:
    sys = build_system()  # |u| <= 4
    x0, r, problems = _ranged(sys, 40, 4.0, 6.0, seed=2)
    opt = np.concatenate(
        [
            terminal_constrained_optimum(sys.with_horizon(t), x0[i : i + 1], r[i : i + 1]).controls
            for i, t in enumerate(problems[:, -1])
        ]
    )
    noisy = opt + np.random.default_rng(3).normal(scale=0.3, size=opt.shape)
    proj = _horizon_projection(sys, (4.0, 6.0), iterations=30)
    u = proj(torch.as_tensor(problems), torch.as_tensor(noisy)).numpy()
    assert np.abs(u).max() <= sys.control_limit
    err = _terminal_errors(sys, x0, r, problems, u)
    assert err.max() < 1e-3 and err.mean() < 0.05 * _terminal_errors(sys, x0, r, problems, noisy).mean()
    fixed_point = proj(torch.as_tensor(problems), torch.as_tensor(opt)).numpy()
    np.testing.assert_allclose(fixed_point, opt, atol=1e-9)


def test_horizon_aware_projection_refuses_what_it_cannot_do() -> None:
    from mlcore.errors import ConfigError

    discrete = build_system("custom", a=[[1.0, 0.1], [0.0, 1.0]], b=[[0.0], [0.1]], q=[1, 1], r=[0.1])
    with pytest.raises(ConfigError, match="given in discrete time"):
        _horizon_projection(discrete, (4.0, 6.0))
    with pytest.raises(ConfigError, match="too ill-conditioned"):  # the cart-pole over 4-6 s: cond 2e12
        _horizon_projection(build_system("cartpole"), (4.0, 6.0))
    with pytest.raises(ConfigError, match="need 0 < T_min <= T_max"):
        TerminalProjection(2, 1, 15, horizons=(6.0, 4.0))
    # unset: the identity
    u = torch.randn(3, 15, 1)
    assert torch.equal(TerminalProjection(2, 1, 15, horizons=(4.0, 6.0))(torch.randn(3, 5), u), u)


def _aware_trc():
    from mlcore_trc_control.models.trc import TinyRecursiveControl

    model = TinyRecursiveControl.create_small(latent_dim=16, hidden_dim=32, projection_horizons=[4.0, 6.0])
    model.set_system(_oscillator())
    return model.eval()


def test_a_checkpoint_restores_the_horizon_aware_projection() -> None:
    from mlcore_trc_control.models.trc import TinyRecursiveControl

    model = _aware_trc()
    x = model.example_input(6)
    assert float(x[:, -1].std()) > 0.1  # the example spans the range
    with torch.no_grad():  # the maps prepared once for all outer cycles = computed per decode
        torch.testing.assert_close(model.forward_cycles(x)[-1], model(x), rtol=0, atol=1e-6)
    fresh = TinyRecursiveControl.create_small(latent_dim=16, hidden_dim=32, projection_horizons=[4.0, 6.0])
    fresh.load_state_dict(model.state_dict())  # no set_system: system, range and loop counts restored
    assert fresh.projection.squarings == model.projection.squarings > 0
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_the_horizon_aware_projection_exports(fmt: str, tmp_path) -> None:
    from mlcore.exporting import export_model

    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
    model = _aware_trc()
    result = export_model(model, None, tmp_path / f"model.{fmt}", format=fmt)
    assert result.ok and result.max_abs_diff < 1e-5, result.summary()
    # the exported model computes per-problem maps: it reaches each target under its own horizon
    sys = _oscillator()
    x = model.example_input(5)
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    else:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load
            out = torch.jit.load(str(tmp_path / "model.torchscript"))(x).numpy()
    p = x.double().numpy()
    assert _terminal_errors(sys, p[:, :2], p[:, 2:4], p, out.astype(np.float64)).max() < 1e-4
