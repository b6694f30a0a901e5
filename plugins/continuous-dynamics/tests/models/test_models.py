"""The five models: shapes, rollout = repeated one-step prediction, falling loss, the Neural ODE's time handling."""

from __future__ import annotations

import pytest
import torch

from mlcore_continuous_dynamics.configs import GRUConfig, LinearConfig, LSTMConfig, NeuralODEConfig, VAERNNConfig
from mlcore_continuous_dynamics.models.linear import LinearDynamics
from mlcore_continuous_dynamics.models.ode import NeuralODE
from mlcore_continuous_dynamics.models.recurrent import GRUDynamics, LSTMPredictor
from mlcore_continuous_dynamics.models.vae_rnn import VAERNNHybrid

SMALL = {"sequence_length": 5}
MODELS = {
    "linear": lambda: LinearDynamics(LinearConfig(**SMALL)),
    "gru": lambda: GRUDynamics(GRUConfig(**SMALL, hidden_dim=16)),
    "lstm": lambda: LSTMPredictor(LSTMConfig(**SMALL, hidden_dim=16)),
    "ode": lambda: NeuralODE(NeuralODEConfig(**SMALL, hidden_dim=16)),
    "vae": lambda: VAERNNHybrid(VAERNNConfig(**SMALL, hidden_dim=16, latent_dim=8)),
}


def _inputs(batch: int = 3, length: int = 5, extra: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = length + extra
    return {
        "states": torch.randn(batch, length, 12, generator=g),
        "actions": torch.randn(batch, n, 4, generator=g),
        "weather": torch.randn(batch, n, 6, generator=g),
        "dt": torch.full((batch, n), 0.05),
    }


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rollout_starts_with_the_one_step_prediction_and_feeds_it_back(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    inputs = _inputs(extra=3)
    with torch.no_grad():
        roll = model.rollout(inputs, 4)
        first = model(inputs)
        shifted = {
            "states": torch.cat([inputs["states"][:, 1:], first.unsqueeze(1)], dim=1),
            **{k: inputs[k][:, 1:] for k in ("actions", "weather", "dt")},
        }
        second = model(shifted)
    assert roll.shape == (3, 4, 12)
    torch.testing.assert_close(roll[:, 0], first)
    torch.testing.assert_close(roll[:, 1], second)


def test_linear_model_starts_as_persistence_and_is_the_stated_map():
    model = LinearDynamics(LinearConfig(**SMALL))
    inputs = _inputs()
    torch.testing.assert_close(model(inputs), inputs["states"][:, -1])
    with torch.no_grad():
        model.B.weight.fill_(0.5)
        model.C.bias.fill_(1.0)
    x, u = inputs["states"][:, -1], inputs["actions"][:, 4]
    expected = x + 0.5 * u.sum(-1, keepdim=True) + 1.0
    torch.testing.assert_close(model(inputs), expected)


@pytest.mark.parametrize("name", ["gru", "lstm", "ode", "vae", "linear"])
def test_training_lowers_the_loss_on_simulated_windows(name, tiny_data):
    torch.manual_seed(0)
    model = MODELS[name]()
    model.dt_ref.fill_(tiny_data.nominal_dt)
    loader = torch.utils.data.DataLoader(tiny_data.train_set(), batch_size=32, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_of(batch):
        if hasattr(model, "compute_loss"):
            return model.compute_loss(batch)[0]
        inputs, target = batch
        return torch.nn.functional.mse_loss(model(inputs), target)

    batch = next(iter(torch.utils.data.DataLoader(tiny_data.train_set(), batch_size=64)))
    with torch.no_grad():
        before = loss_of(batch).item()
    for _ in range(10):
        for b in loader:
            opt.zero_grad()
            loss_of(b).backward()
            opt.step()
    with torch.no_grad():
        after = loss_of(batch).item()
    assert after < 0.7 * before


def test_neural_ode_accepts_irregular_intervals():
    """One interval of 2h equals two of h (an adaptive solver at tight tolerance), per sample of a batch."""
    torch.manual_seed(0)
    model = NeuralODE(NeuralODEConfig(**SMALL, hidden_dim=16, solver="dopri5", rtol=1e-7, atol=1e-8)).eval()
    with torch.no_grad():
        model.field.net[-1].weight.mul_(30.0)  # a field strong enough to curve the path
    x = torch.randn(2, 12)
    u, w = torch.randn(2, 4), torch.randn(2, 6)
    h = torch.tensor([0.03, 0.07])  # different intervals in one batch
    with torch.no_grad():
        once = model.integrate(x, u, w, 2 * h)
        twice = model.integrate(model.integrate(x, u, w, h), u, w, h)
        single = model.integrate(x[1:], u[1:], w[1:], 2 * h[1:])
    torch.testing.assert_close(once, twice, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(once[1:], single, atol=2e-5, rtol=1e-5)  # the batch shares adaptive steps
    assert not torch.allclose(once, x + 2 * (model.integrate(x, u, w, h) - x), atol=1e-4)  # not a straight line


def test_neural_ode_solver_and_step_come_from_the_config():
    torch.manual_seed(0)
    x, u, w, dt = torch.randn(2, 12), torch.randn(2, 4), torch.randn(2, 6), torch.full((2,), 0.05)
    counts = {}
    for solver, fraction in (("euler", 0.25), ("rk4", 0.5)):
        model = NeuralODE(NeuralODEConfig(hidden_dim=8, solver=solver, step_fraction=fraction))
        model.field.evaluations = 0
        model.integrate(x, u, w, dt)
        counts[solver] = model.field.evaluations
    assert counts == {"euler": 4, "rk4": 8}


def test_neural_ode_adjoint_gives_the_same_gradient():
    torch.manual_seed(0)
    direct = NeuralODE(NeuralODEConfig(**SMALL, hidden_dim=8, solver="dopri5", rtol=1e-8, atol=1e-9))
    adjoint = NeuralODE(NeuralODEConfig(**SMALL, hidden_dim=8, solver="dopri5", rtol=1e-8, atol=1e-9, adjoint=True))
    adjoint.load_state_dict(direct.state_dict())
    inputs = _inputs()
    grads = []
    for model in (direct, adjoint):
        model.train()
        model.zero_grad()
        model(inputs).pow(2).sum().backward()
        grads.append(model.field.net[0].weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_vae_loss_is_recon_plus_beta_kl_plus_prediction():
    torch.manual_seed(0)
    model = VAERNNHybrid(VAERNNConfig(**SMALL, hidden_dim=16, latent_dim=8, beta=0.5, prediction_weight=2.0)).eval()
    inputs = _inputs()
    target = torch.randn(3, 12)
    total, logs = model.compute_loss((inputs, target))
    assert total.item() == pytest.approx(logs["recon"] + 0.5 * logs["kl"] + 2.0 * logs["pred"], rel=1e-5)
    assert logs["kl"] > 0
    with torch.no_grad():
        torch.testing.assert_close(
            torch.tensor(logs["pred"]), (model(inputs) - target).pow(2).mean(), rtol=1e-5, atol=1e-7
        )


def test_wrong_input_size_names_the_config_key():
    model = GRUDynamics(GRUConfig(**SMALL, hidden_dim=8, weather_dim=5))
    with pytest.raises(ValueError, match=r"weather have 6 features but model.weather_dim=5"):
        model(_inputs())
