"""Tests of the classification evaluator (mlcore/evaluation/classification.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mlcore.errors import MlcoreError
from mlcore.evaluation.classification import (
    ClassificationEvaluator,
    ClassificationEvaluatorConfig,
    classification_metrics,
)
from mlcore.io import read_json
from mlcore.testing.toys import ToyData, ToyDataConfig


def _one_hot_logits(pred: list[int], n: int) -> torch.Tensor:
    return F.one_hot(torch.tensor(pred), n).float() * 5.0


def test_accuracy_and_macro_f1_match_hand_computation():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = [0, 1, 1, 1, 2, 0]
    m = classification_metrics(_one_hot_logits(pred, 3), labels)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # class 0: tp1 fp1 fn1 -> f1 .5; class 1: tp2 fp1 fn0 -> .8; class 2: tp1 fp0 fn1 -> 2/3
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["cross_entropy"] == pytest.approx(F.cross_entropy(_one_hot_logits(pred, 3), labels).item())
    assert m["num_samples"] == 6


def test_macro_f1_ignores_classes_absent_from_labels_and_predictions():
    labels = torch.tensor([0, 1, 0, 1])
    m = classification_metrics(_one_hot_logits([0, 1, 0, 1], 4), labels, per_class=True)
    assert m["macro_f1"] == 1.0 and m["accuracy"] == 1.0
    assert m["f1/2"] == 0.0 and m["f1/3"] == 0.0


def test_binary_single_logit_uses_sigmoid():
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    labels = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    m = classification_metrics(logits, labels)
    assert m["accuracy"] == pytest.approx(0.75)
    expected = F.binary_cross_entropy_with_logits(logits[:, 0], labels[:, 0]).item()
    assert m["cross_entropy"] == pytest.approx(expected)


def test_one_hot_targets_and_sequence_logits():
    labels = torch.tensor([[0, 1, 2], [2, 2, 1]])  # (N=2, T=3)
    logits = F.one_hot(labels, 3).float().movedim(-1, 1) * 4  # (N, C, T)
    m = classification_metrics(logits, labels)
    assert m["accuracy"] == 1.0 and m["num_samples"] == 6
    one_hot = F.one_hot(torch.tensor([1, 0]), 2).float()
    assert classification_metrics(_one_hot_logits([1, 1], 2), one_hot)["accuracy"] == 0.5


def test_label_errors_are_one_line():
    with pytest.raises(MlcoreError, match=r"labels must lie in \[0, 2\]"):
        classification_metrics(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(MlcoreError, match="logits have 3 classes, config says 4"):
        classification_metrics(torch.zeros(2, 3), torch.tensor([0, 1]), num_classes=4)
    with pytest.raises(MlcoreError, match="2 predictions but 3 labels"):
        classification_metrics(torch.zeros(2, 3), torch.tensor([0, 1, 2]))


def blobs() -> ToyData:
    """Three well-separated Gaussian blobs in 2-D, 30 points each; 63 for training, 27 for validation."""
    return ToyData(ToyDataConfig(num_samples=90, target="blobs", out_features=3, val_fraction=0.3))


def test_evaluator_on_a_trained_classifier(tmp_path):
    data = blobs().prepare()
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    x = torch.stack([data.train_set()[i][0] for i in range(len(data.train_set()))])
    y = torch.stack([data.train_set()[i][1] for i in range(len(data.train_set()))])
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    ev = ClassificationEvaluator(ClassificationEvaluatorConfig(batch_size=8, per_class=True))
    metrics = ev.evaluate(model, data, out_dir=tmp_path)
    assert set(ClassificationEvaluator.metrics) <= set(metrics)
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0
    assert metrics["cross_entropy"] < 0.2
    assert metrics["num_samples"] == 27
    assert read_json(tmp_path / "metrics.json") == pytest.approx(metrics)


def test_untrained_classifier_scores_lower():
    torch.manual_seed(1)
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))  # always predicts class 0
    m = ClassificationEvaluator().evaluate(model, blobs())
    assert m["accuracy"] < 0.5
    assert m["macro_f1"] < 0.5


def test_a_zero_binary_logit_predicts_the_negative_class():
    # sigmoid(0) = 0.5 is not above the 0.5 threshold: class 0, as scikit-learn's predict
    m = classification_metrics(torch.tensor([0.0, 2.0]), torch.tensor([0, 1]))
    assert m["accuracy"] == 1.0
