"""The dynamics evaluator and the reference predictors, against hand computations."""

from __future__ import annotations

import json

import pytest
import torch

from mlcore_continuous_dynamics.configs import DynamicsEvaluatorConfig, LinearConfig, VehicleEpisodesConfig
from mlcore_continuous_dynamics.data import VehicleEpisodes
from mlcore_continuous_dynamics.evaluation import DynamicsEvaluator, reference_rollouts, rollout_windows
from mlcore_continuous_dynamics.models.linear import LinearDynamics

TINY = {"episodes": 6, "episode_seconds": 3.0, "sequence_length": 5, "horizon": 6, "stride": 2}


def _persistence_model() -> LinearDynamics:
    return LinearDynamics(LinearConfig(sequence_length=5)).eval()  # A = I, B = C = 0, d = 0


def test_a_persistence_model_scores_exactly_the_persistence_reference(tiny_data, tmp_path):
    """The linear model at its initial weights is persistence: its figures must equal the reference's."""
    cfg = DynamicsEvaluatorConfig(horizon=6, max_rollout_windows=0, permutation=False)
    metrics = DynamicsEvaluator(cfg).evaluate(_persistence_model(), tiny_data, out_dir=tmp_path)
    assert metrics["mse"] == pytest.approx(metrics["persistence_mse"], rel=1e-6)
    test = tiny_data.test_set()
    by_hand = torch.stack([(test[i][1] - test[i][0]["states"][-1]).pow(2).mean() for i in range(len(test))]).mean()
    assert metrics["mse"] == pytest.approx(by_hand.item(), rel=1e-5)
    curve = json.loads((tmp_path / "rollout_curve.json").read_text())
    assert curve["horizon"] == [1, 2, 3, 4, 5, 6]
    assert curve["mse"]["model"] == pytest.approx(curve["mse"]["persistence"], rel=1e-6)
    assert curve["mse"]["model"][5] > curve["mse"]["model"][0]  # errors grow with the horizon
    assert metrics["rollout_mse/last"] == pytest.approx(curve["mse"]["model"][-1])


def test_true_model_is_exact_without_gusts():
    data = VehicleEpisodes(VehicleEpisodesConfig(**TINY, max_gust=0.0)).prepare()
    windows = rollout_windows(data, 6, 0)
    refs = reference_rollouts(data, windows)
    targets = torch.stack([windows[i][1] for i in range(len(windows))])
    assert (refs["true_model"] - targets).abs().max().item() < 1e-4  # float32 normalisation only
    assert (refs["persistence"] - targets).abs().max().item() > 1e-2


def test_true_model_has_a_small_floor_with_gusts(tiny_data):
    windows = rollout_windows(tiny_data, 6, 0)
    refs = reference_rollouts(tiny_data, windows)
    targets = torch.stack([windows[i][1] for i in range(len(windows))])
    true_err = (refs["true_model"] - targets).pow(2).mean().item()
    pers_err = (refs["persistence"] - targets).pow(2).mean().item()
    assert 0 < true_err < 1e-3 * pers_err


def test_permuting_a_factor_the_model_ignores_changes_nothing():
    data = VehicleEpisodes(VehicleEpisodesConfig(**{**TINY, "episodes": 14})).prepare()  # 2 test episodes
    model = _persistence_model()
    with torch.no_grad():
        model.C.weight[:, 3] = 0.5  # uses the density column only
    cfg = DynamicsEvaluatorConfig(horizon=2, max_rollout_windows=8)
    metrics = DynamicsEvaluator(cfg).evaluate(model, data)
    assert metrics["perm_increase/wind"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["perm_increase/rain"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["perm_increase/density"] > 1e-4


def test_rollout_windows_are_spread_and_capped(tiny_data):
    full = tiny_data.rollout_set(6)
    picked = rollout_windows(tiny_data, 6, 3)
    assert len(picked) == 3 and picked.indices[0] == 0 and picked.indices[-1] == len(full) - 1
