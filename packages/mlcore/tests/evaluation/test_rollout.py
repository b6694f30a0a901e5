"""Rollout metrics, checked against hand computations."""

from __future__ import annotations

import pytest
import torch

from mlcore.evaluation.rollout import autoregressive_rollout, group_errors, horizon_errors, rollout_metrics


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    """2 samples, 3 steps, 4 dims; errors chosen so every figure is easy to compute by hand."""
    true = torch.zeros(2, 3, 4)
    pred = torch.zeros(2, 3, 4)
    pred[0, 0, 0] = 2.0  # step 1: one error of 2 -> squared 4 over 8 entries = 0.5
    pred[:, 1, :] = 1.0  # step 2: all errors 1 -> 1.0
    pred[1, 2, 3] = -4.0  # step 3: one error of 4 -> 16 / 8 = 2.0
    return pred, true


def test_horizon_errors_is_the_mse_of_each_step():
    pred, true = _pair()
    assert horizon_errors(pred, true).tolist() == [0.5, 1.0, 2.0]


def test_horizon_errors_does_not_mix_steps_and_samples():
    """A transposed reduction (over steps instead of samples) gives other numbers: caught here."""
    pred, true = _pair()
    pred[1, 0, 1] = 6.0  # step 1 now has 4 + 36 = 40 over 8 entries
    assert horizon_errors(pred, true)[0].item() == pytest.approx(5.0)


def test_group_errors_by_slice_and_indices():
    pred, true = _pair()
    groups = {"first": slice(0, 1), "last_two": [2, 3]}
    # first column: entries (0,0)=4, step 2: 1 + 1 -> (4 + 2) / 6 entries
    # columns 2 and 3: step 2: 4 ones; step 3: 16 -> (4 + 16) / 12
    assert group_errors(pred, true, groups) == pytest.approx({"first": 6 / 6, "last_two": 20 / 12})


def test_group_outside_the_state_is_an_error():
    pred, true = _pair()
    with pytest.raises(ValueError, match="outside a state of size 4"):
        group_errors(pred, true, {"bad": [3, 4]})


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="predictions have shape"):
        horizon_errors(torch.zeros(2, 3, 4), torch.zeros(2, 2, 4))


def test_rollout_metrics_flat_names():
    pred, true = _pair()
    out = rollout_metrics(pred, true, groups={"first": slice(0, 1)}, horizons=(1, 3, 10))
    assert out["rollout_mse/h1"] == 0.5
    assert out["rollout_mse/h3"] == 2.0
    assert "rollout_mse/h10" not in out  # beyond the rollout
    assert out["rollout_mse/mean"] == pytest.approx(3.5 / 3)
    assert out["mse/first"] == pytest.approx(4 / 2)  # one-step only: (4 + 0) / 2 samples
    assert out["rollout_mse/first"] == pytest.approx(1.0)


def test_autoregressive_rollout_feeds_predictions_back_and_slides_exogenous():
    """x_{t+1} = x_t + u_t on a window of 2: predictions compound and each step sees its own u."""
    history = torch.tensor([[[0.0], [1.0]]])  # (1, L=2, 1)
    controls = torch.tensor([[[9.0], [10.0], [100.0], [1000.0]]])  # L + H - 1 = 4 entries
    seen = []

    def step(states, exo):
        seen.append(states[0, :, 0].tolist())
        return states[:, -1] + exo["u"][:, -1]

    out = autoregressive_rollout(step, history, 3, {"u": controls})
    assert out[0, :, 0].tolist() == [11.0, 111.0, 1111.0]
    assert seen == [[0.0, 1.0], [1.0, 11.0], [11.0, 111.0]]


def test_autoregressive_rollout_needs_enough_exogenous_steps():
    with pytest.raises(ValueError, match="needs 4"):
        autoregressive_rollout(lambda s, e: s[:, -1], torch.zeros(1, 2, 1), 3, torch.zeros(1, 3, 1))
