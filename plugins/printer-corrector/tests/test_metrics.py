"""The metrics against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_printer_corrector.metrics import error_metrics, latency_ms


def test_metrics_equal_a_hand_computation():
    true = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])
    pred = true + np.array([[0.1, -0.2], [0.0, 0.2], [-0.1, 0.0], [0.3, 0.0]])
    m = error_metrics(pred, true)
    err = np.array([0.1, -0.2, 0.0, 0.2, -0.1, 0.0, 0.3, 0.0])
    assert m["mae"] == pytest.approx(np.abs(err).mean())
    assert m["rmse"] == pytest.approx(np.sqrt((err**2).mean()))
    assert m["rmse_um"] == pytest.approx(1000 * m["rmse"])
    # x: residuals 0.1, 0, -0.1, 0.3; true x mean 3, ss_tot = 9+1+1+9 = 20
    assert m["r2_x"] == pytest.approx(1 - (0.01 + 0 + 0.01 + 0.09) / 20)
    assert m["r2_y"] == pytest.approx(1 - (0.04 + 0.04) / 20)
    assert m["r2"] == pytest.approx((m["r2_x"] + m["r2_y"]) / 2)
    assert m["p50"] == pytest.approx(np.percentile(np.abs(err), 50))
    assert m["p99"] == pytest.approx(np.percentile(np.abs(err), 99))
    assert m["target_rms"] == pytest.approx(np.sqrt((true**2).mean()))
    assert m["correlation_x"] == pytest.approx(np.corrcoef(pred[:, 0], true[:, 0])[0, 1])


def test_perfect_and_constant_predictions():
    true = np.random.default_rng(0).normal(size=(50, 2))
    perfect = error_metrics(true, true)
    assert perfect["r2"] == 1.0 and perfect["rmse"] == 0.0 and perfect["correlation"] == pytest.approx(1.0)
    mean = error_metrics(np.tile(true.mean(0), (50, 1)), true)
    assert mean["r2"] == pytest.approx(0.0, abs=1e-12)  # the mean predictor explains nothing
    assert error_metrics(true, true, prefix="arx_").keys() == {f"arx_{k}" for k in perfect}


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"must both be \(N, 2\)"):
        error_metrics(np.zeros((3, 2)), np.zeros((4, 2)))


def test_latency_percentiles_are_ordered():
    calls = []
    lat = latency_ms(lambda: calls.append(1), repeats=50, warmup=5)
    assert len(calls) == 55
    assert 0 < lat["p50"] <= lat["p99"]
