"""Feed-forward compensation: alignment of the causal predictions, and what the correction does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcore_printer_corrector.compensation import compensate_layer, predict_series, smooth
from mlcore_printer_corrector.dynamics import DynamicsConfig
from mlcore_printer_corrector.gcode import read_gcode
from mlcore_printer_corrector.planner import PlannerConfig
from mlcore_printer_corrector.simulation import simulate_layer

STATS = {"feature_mean": [0.0] * 4, "feature_std": [1.0] * 4, "target_mean": [0.0, 0.0], "target_std": [1.0, 1.0]}
SQUARE = "G1 X100 Y100 F6000\n" + "".join(
    f"G1 X{x} Y{y} F6000\n" for _ in range(3) for x, y in ((140, 100), (140, 140), (100, 140), (100, 100))
)


def last_sample(x: torch.Tensor) -> torch.Tensor:
    return x[:, -1, :2]


def test_predictions_are_causal_and_aligned():
    feats = np.arange(40, dtype=float).reshape(10, 4)
    pred = predict_series(last_sample, feats, STATS, 3)
    assert (pred[:2] == 0).all()
    np.testing.assert_allclose(pred[2:], feats[2:, :2])  # each from the window ending at that sample


def test_smoothing_keeps_slow_and_removes_fast_content():
    t = np.arange(400) / 100.0
    slow, fast = np.sin(2 * np.pi * 1.0 * t), np.sin(2 * np.pi * 30.0 * t)
    out = smooth(np.column_stack([slow + fast, slow]), 10.0, 100.0)
    assert np.abs(out[50:-50, 0] - slow[50:-50]).max() < 0.1
    assert smooth(fast[:, None], 0.0, 100.0) is not None and np.array_equal(
        smooth(fast[:, None], 0.0, 100.0), fast[:, None]
    )


def test_zero_prediction_changes_nothing_and_the_oracle_helps():
    path = read_gcode("sq", text=SQUARE)
    planner, dyn = PlannerConfig(), DynamicsConfig(steps_per_mm=0.0)

    def zero(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 2)

    res = compensate_layer(path, zero, STATS, 10, planner, dyn)
    assert res.rms_after == pytest.approx(res.rms_before, rel=1e-12)
    assert res.rms_oracle < res.rms_before  # the true (low-passed) error as feed-forward reduces the error
    before = simulate_layer(path, planner, dyn)
    np.testing.assert_allclose(res.before.error, before.error)


def test_a_constant_correction_shifts_the_carriage():
    path = read_gcode("sq", text=SQUARE)
    planner, dyn = PlannerConfig(), DynamicsConfig(steps_per_mm=0.0, position_variation=0.0)
    base = simulate_layer(path, planner, dyn)
    shifted = simulate_layer(path, planner, dyn, correction=np.tile([0.05, -0.02], (base.t.shape[0], 1)))
    np.testing.assert_allclose(shifted.error - base.error, np.tile([-0.05, 0.02], (base.t.shape[0], 1)), atol=1e-9)
