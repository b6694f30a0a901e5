"""Tests of the regression evaluator and the evaluation helpers (mlcore/evaluation)."""

from __future__ import annotations

import math
import typing

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from mlcore.errors import ConfigError, MlcoreError
from mlcore.evaluation import Evaluator, concat_batches, predict
from mlcore.evaluation.regression import RegressionEvaluator, RegressionEvaluatorConfig, regression_metrics
from mlcore.io import read_json
from mlcore.testing.toys import ToyData, ToyDataConfig
from mlcore.training.batches import move_to_device


def linear_data() -> ToyData:
    """y = x @ W (3 -> 2, ``weight`` holds W): 30 training samples and a held-out test split of 20."""
    return ToyData(
        ToyDataConfig(
            num_samples=50, in_features=3, out_features=2, target="linear", val_fraction=0.0, test_fraction=0.4
        )
    )


def test_metrics_match_hand_computed_values():
    pred = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    true = torch.tensor([[1.0], [3.0], [2.0], [4.0]])
    m = regression_metrics(pred, true)
    assert m["mse"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(math.sqrt(0.5))
    # ss_tot = sum((y - 2.5)^2) = 5, ss_res = 2
    assert m["r2"] == pytest.approx(1 - 2 / 5)
    assert m["num_samples"] == 4


def test_r2_is_the_uniform_average_over_output_dims():
    true = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]])
    pred = true.clone()
    pred[:, 1] = 2.0  # predicts the mean of dim 1: r2 = 0 there, 1 on dim 0
    m = regression_metrics(pred, true, per_dim=True)
    assert m["r2"] == pytest.approx(0.5)
    assert m["r2/0"] == pytest.approx(1.0)
    assert m["r2/1"] == pytest.approx(0.0)
    assert m["mse/0"] == 0.0 and m["mse/1"] == pytest.approx(8 / 3)
    assert "mse/0" not in regression_metrics(pred, true)


def test_constant_target_r2_follows_sklearn_convention():
    true = torch.ones(4, 1)
    assert regression_metrics(true.clone(), true)["r2"] == 1.0
    assert regression_metrics(true + 1, true)["r2"] == 0.0


def test_sequence_outputs_are_flattened_per_sample():
    true = torch.randn(6, 4, 2)
    m = regression_metrics(true + 0.1, true)
    assert m["mae"] == pytest.approx(0.1, abs=1e-6)


def test_shape_mismatch_is_one_line_error():
    with pytest.raises(MlcoreError, match="predictions have shape") as info:
        regression_metrics(torch.zeros(4, 2), torch.zeros(4, 3))
    assert "\n" not in str(info.value)


def test_evaluator_scores_a_perfect_model_and_writes_metrics_json(tmp_path):
    data = linear_data().prepare()
    model = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(data.weight.T)
    model.train()
    ev = RegressionEvaluator(RegressionEvaluatorConfig(batch_size=7))
    metrics = ev.evaluate(model, data, device="cpu", out_dir=tmp_path)
    assert set(RegressionEvaluator.metrics) <= set(metrics)
    assert metrics["mse"] < 1e-10 and metrics["r2"] == pytest.approx(1.0)
    assert metrics["num_samples"] == 20  # the test split, not train
    assert model.training, "the evaluator must restore the model's mode"
    saved = read_json(tmp_path / "metrics.json")
    assert saved == pytest.approx(metrics)
    assert not list(tmp_path.glob(".*.tmp")), "atomic write leaves no temporary file"


def test_evaluator_on_a_bad_model_reports_large_error():
    data = linear_data().prepare()
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.fill_(10.0)
    metrics = RegressionEvaluator().evaluate(model, data)
    assert metrics["mse"] > 50 and metrics["r2"] < 0


def test_config_rejects_zero_batch_size():
    from mlcore.config import structure

    with pytest.raises(ConfigError, match="batch_size=0 is out of range"):
        structure(RegressionEvaluatorConfig, {"batch_size": 0})


def test_predict_handles_nested_batches_and_keeps_order():
    x = torch.arange(10, dtype=torch.float32)[:, None]
    ds = [({"a": x[i], "b": 2 * x[i]}, (x[i], -x[i])) for i in range(10)]

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))

        def forward(self, inputs):
            return {"sum": inputs["a"] + inputs["b"] + self.p}

    preds, targets = predict(Model(), ds, batch_size=3)
    assert torch.equal(preds["sum"], 3 * x)
    assert torch.equal(targets[0], x) and torch.equal(targets[1], -x)


def test_predict_refuses_items_that_are_not_pairs():
    ds = TensorDataset(torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4, 1))
    with pytest.raises(MlcoreError, match=r"\(inputs, targets\) pairs"):
        predict(nn.Identity(), ds, batch_size=2)


def test_predict_refuses_empty_dataset():
    with pytest.raises(MlcoreError, match="empty"):
        predict(nn.Identity(), TensorDataset(torch.zeros(0, 1), torch.zeros(0, 1)))


def test_concat_and_move_helpers():
    batches = [(torch.ones(2, 1), {"k": torch.zeros(2)}), (torch.ones(1, 1), {"k": torch.ones(1)})]
    out = concat_batches(batches)
    assert out[0].shape == (3, 1) and torch.equal(out[1]["k"], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(concat_batches([torch.tensor(1.0), torch.tensor(2.0)]), torch.tensor([1.0, 2.0]))
    moved = move_to_device({"a": [torch.ones(1)], "b": "text"}, "meta")  # a device other than the tensors' own
    assert moved["b"] == "text" and moved["a"][0].device.type == "meta" and moved["a"][0].shape == (1,)


def test_base_evaluator_checks_declared_metrics(tmp_path):
    class Broken(Evaluator):
        metrics = ("mse", "extra")

        def compute(self, predictions, targets):
            return {"mse": 1.0}

    with pytest.raises(RuntimeError, match=r"did not return its declared metrics \['extra'\]"):
        Broken().evaluate(nn.Linear(3, 2), linear_data(), out_dir=tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_custom_evaluator_via_compute():
    class MaxError(Evaluator):
        metrics = ("max_error",)

        def compute(self, predictions, targets):
            return {"max_error": (predictions - targets).abs().max()}

    model = nn.Linear(3, 2)
    data = linear_data().prepare()
    result = MaxError().evaluate(model, data)
    x, y = data.test_set()[:]  # evaluators score the test split
    with torch.no_grad():
        expected = float((model(x) - y).abs().max())
    assert type(result["max_error"]) is float and result["max_error"] == pytest.approx(expected)


def test_zero_dim_tensors_are_scored_as_one_sample():
    m = regression_metrics(torch.tensor(3.0), torch.tensor(1.0))
    assert m["mse"] == pytest.approx(4.0) and m["mae"] == pytest.approx(2.0) and m["num_samples"] == 1.0


def test_per_dim_metrics_hold_each_dimension_and_skip_a_single_output():
    true = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]])
    pred = true + torch.tensor([1.0, -3.0])  # dim 0 off by 1, dim 1 off by 3
    m = regression_metrics(pred, true, per_dim=True)
    assert m["mae/0"] == pytest.approx(1.0) and m["mae/1"] == pytest.approx(3.0)
    assert m["mse/0"] == pytest.approx(1.0) and m["mse/1"] == pytest.approx(9.0)
    single = regression_metrics(pred[:, :1], true[:, :1], per_dim=True)
    assert not any("/" in k for k in single)  # one output: the overall metrics are the per-dim ones


class _NamedPair(typing.NamedTuple):
    a: torch.Tensor
    b: torch.Tensor


def test_concat_batches_keeps_named_tuples():
    out = concat_batches([_NamedPair(torch.zeros(2), torch.ones(2)), _NamedPair(torch.ones(1), torch.zeros(1))])
    assert isinstance(out, _NamedPair)
    assert torch.equal(out.a, torch.tensor([0.0, 0.0, 1.0])) and torch.equal(out.b, torch.tensor([1.0, 1.0, 0.0]))


def test_predict_runs_the_model_in_eval_mode_and_restores_training_mode():
    seen: list[bool] = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x

    model = Spy().train()
    predict(model, TensorDataset(torch.zeros(4, 1), torch.zeros(4, 1)), batch_size=2)
    assert seen == [False, False] and model.training


def test_predict_resolves_a_device_name():
    ds = TensorDataset(torch.arange(3.0)[:, None], torch.zeros(3, 1))
    preds, _ = predict(nn.Identity(), ds, device="auto")  # "auto" is resolved, not passed to tensor.to
    assert torch.equal(preds, torch.arange(3.0)[:, None])
