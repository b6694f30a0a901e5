"""Tests of the built-in losses (mlcore/losses.py)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore.losses import (
    CrossEntropyConfig,
    CrossEntropyLoss,
    HuberConfig,
    HuberLoss,
    HybridConfig,
    HybridLoss,
    MAELoss,
    MSELoss,
)
from mlcore.registry import Registry


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 3, generator=g), torch.randn(16, 3, generator=g)


def test_mse_and_mae_match_definitions(pair):
    pred, target = pair
    assert MSELoss()(pred, target).item() == pytest.approx(((pred - target) ** 2).mean().item())
    assert MAELoss()(pred, target).item() == pytest.approx((pred - target).abs().mean().item())


def test_huber_is_quadratic_below_delta_and_linear_above():
    loss = HuberLoss(HuberConfig(delta=1.0))
    zero = torch.zeros(1)
    assert loss(torch.tensor([0.5]), zero).item() == pytest.approx(0.5 * 0.25)
    assert loss(torch.tensor([3.0]), zero).item() == pytest.approx(1.0 * (3.0 - 0.5))
    wide = HuberLoss(HuberConfig(delta=10.0))
    assert wide(torch.tensor([3.0]), zero).item() == pytest.approx(0.5 * 9.0)


@pytest.mark.parametrize("ratio", [0.0, 0.3, 1.0])
def test_hybrid_is_weighted_sum_of_mae_and_mse(pair, ratio):
    pred, target = pair
    expected = ratio * F.l1_loss(pred, target) + (1 - ratio) * F.mse_loss(pred, target)
    assert HybridLoss(HybridConfig(ratio=ratio))(pred, target).item() == pytest.approx(expected.item())


def test_hybrid_default_ratio_is_half(pair):
    pred, target = pair
    expected = 0.5 * F.l1_loss(pred, target) + 0.5 * F.mse_loss(pred, target)
    assert HybridLoss()(pred, target).item() == pytest.approx(expected.item())


def test_cross_entropy_accepts_index_column_and_smoothing():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    labels = torch.tensor([0, 1])
    plain = CrossEntropyLoss()(logits, labels)
    assert plain.item() == pytest.approx(F.cross_entropy(logits, labels).item())
    assert CrossEntropyLoss()(logits, labels[:, None]).item() == pytest.approx(plain.item())
    smoothed = CrossEntropyLoss(CrossEntropyConfig(label_smoothing=0.2))(logits, labels)
    assert smoothed.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.2).item())
    assert smoothed.item() > plain.item()


@pytest.mark.parametrize("cls", [MSELoss, MAELoss, HuberLoss, HybridLoss])
def test_regression_losses_refuse_silent_broadcasting(cls):
    with pytest.raises(ValueError, match=r"prediction shape \(4, 1\) != target shape \(4,\)"):
        cls()(torch.zeros(4, 1), torch.zeros(4))


@pytest.mark.parametrize("cls", [MSELoss, MAELoss, HuberLoss, HybridLoss])
def test_losses_give_gradients(cls, pair):
    pred, target = pair
    pred = pred.clone().requires_grad_(True)
    cls()(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("cls", "values", "message"),
    [
        (HuberConfig, {"delta": 0.0}, r"delta=0.0 is out of range"),
        (HuberConfig, {"delta": -1}, r"delta=-1.0 is out of range"),
        (
            CrossEntropyConfig,
            {"label_smoothing": 1.0},
            r"label_smoothing=1.0 is out of range \(allowed: \[0.0, 1.0\)\)",
        ),
        (HybridConfig, {"ratio": 1.5}, r"ratio=1.5 is out of range \(allowed: \[0.0, 1.0\]\)"),
        (HybridConfig, {"ratio": -0.1}, r"ratio=-0.1 is out of range"),
    ],
)
def test_configs_reject_bad_values_with_one_line(cls, values, message):
    with pytest.raises(ConfigError, match=message) as info:
        structure(cls, values, where="loss.")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("loss.")


@pytest.mark.parametrize(
    ("name", "config"),
    [("mse", None), ("mae", None), ("huber", {"delta": 0.5}), ("cross_entropy", {}), ("hybrid", {"ratio": 0.25})],
)
def test_builtin_specs_build_the_losses(name, config):
    reg = Registry.from_modules({})
    spec = reg.get("loss", name)
    loss = spec.build(spec.make_config(config)) if spec.config else spec.build()
    pred = torch.randn(5, 3, requires_grad=True)
    target = torch.randn(5, 3).softmax(-1) if name == "cross_entropy" else torch.randn(5, 3)
    value = loss(pred, target)
    assert value.dim() == 0 and torch.isfinite(value)
    if name == "hybrid":
        assert loss.config.ratio == 0.25
