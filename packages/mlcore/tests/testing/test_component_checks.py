"""Tests of the plain checks of losses, evaluators, pipelines, trackers and callbacks
(mlcore/testing/component_checks.py), on the toy plugin of tests/testing/conftest.py.
"""

from __future__ import annotations

import pytest
import torch

from mlcore.io import read_json
from mlcore.testing import ContractError
from mlcore.testing import component_checks as kit


def test_loss_checks(toy):
    pred, target = torch.randn(4, 2), torch.randn(4, 2)
    assert kit.check_loss(toy.build("loss", "goodloss"), pred.clone(), target) == pytest.approx(
        float(((pred - target) ** 2).mean())
    )
    with pytest.raises(ContractError, match="must return a scalar tensor"):
        kit.check_loss(toy.build("loss", "vectorloss"), pred.clone(), target)


def test_loss_check_takes_a_models_output_as_the_prediction(toy):
    """Issue 9: the gradient of a non-leaf prediction (a model's output) is checked, not its .grad."""
    model, _, (x, y) = toy.model_and_batch("good")
    prediction = model(x)
    assert not prediction.is_leaf
    value = kit.check_loss(toy.build("loss", "goodloss"), prediction, y)
    assert value == pytest.approx(float(((prediction - y) ** 2).mean()))
    assert all(p.grad is None for p in model.parameters()), "the check leaves the model's gradients alone"

    def detaching(pred, target):
        return ((pred.detach() - target) ** 2).mean()

    with pytest.raises(ContractError, match="function: the value carries no gradient"):
        kit.check_loss(detaching, prediction, y)


def test_loss_whose_gradient_is_not_finite_fails():
    def sqrt_loss(pred, target):
        return (pred - target).abs().sqrt().mean()

    pred = torch.ones(3, 1)
    with pytest.raises(ContractError, match="no finite gradient reaches the prediction"):
        kit.check_loss(sqrt_loss, pred, pred.clone())


def test_evaluator_checks(toy, tmp_path):
    model, data = toy.trained_model("good")
    metrics = kit.check_evaluator(toy.build("evaluator", "goodeval"), model, data, tmp_path / "a")
    x = torch.stack([data.eval_set()[i][0] for i in range(len(data.eval_set()))])
    y = torch.stack([data.eval_set()[i][1] for i in range(len(data.eval_set()))])
    with torch.no_grad():
        assert metrics["mse"] == pytest.approx(float(((model(x) - y) ** 2).mean()), rel=1e-5)
    assert read_json(tmp_path / "a" / "metrics.json") == pytest.approx(metrics)
    with pytest.raises(ContractError, match=r"did not return declared metrics \['mae'\]"):
        kit.check_evaluator(toy.build("evaluator", "forgets"), model, data, tmp_path / "b")


def test_pipeline_profile_checks(toy_registry):
    reg = toy_registry
    assert kit.check_pipeline_profile(reg.get("pipeline", "pipe"), "full").hidden == 50
    with pytest.raises(ContractError, match=r"has no 'full' profile \(it has: quick\)"):
        kit.check_pipeline_profile(reg.get("pipeline", "noprofiles"), "full")
    with pytest.raises(
        ContractError, match="pipeline 'badprofile', profile 'quick': unknown key 'hiden'; did you mean 'hidden'"
    ):
        kit.check_pipeline_profile(reg.get("pipeline", "badprofile"), "quick")
    with pytest.raises(ContractError, match="hidden='many' is not an integer"):
        kit.check_pipeline_profile(reg.get("pipeline", "badprofile"), "full")


def test_tracker_and_callback_checks(toy):
    kit.check_tracker(toy.build("tracker", "tensorboard"))
    kit.check_callback(toy.build("callback", "grad_histograms"))
    with pytest.raises(ContractError, match=r"object must derive from mlcore\.training\.tracking\.Tracker"):
        kit.check_tracker(object())
    with pytest.raises(ContractError, match=r"GoodLoss must derive from mlcore\.training\.callbacks\.Callback"):
        kit.check_callback(toy.build("loss", "goodloss"))
