"""The linear baseline recovers a linear map exactly and is fitted by least squares."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_printer_corrector.baseline import LinearBaseline


def test_recovers_an_exact_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5, 4))
    w = rng.normal(size=(20, 2))
    y = x.reshape(400, -1) @ w + np.array([0.5, -1.0])
    fit = LinearBaseline.fit(x, y, ridge=0.0)
    np.testing.assert_allclose(fit.predict(x), y, atol=1e-9)
    np.testing.assert_allclose(fit.weights[-1], [0.5, -1.0], atol=1e-9)


def test_ridge_shrinks_the_weights_but_not_the_bias():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3, 4))
    y = x.reshape(200, -1)[:, :2] + 3.0
    small = LinearBaseline.fit(x, y, ridge=0.0)
    big = LinearBaseline.fit(x, y, ridge=10.0)
    assert np.abs(big.weights[:-1]).sum() < np.abs(small.weights[:-1]).sum()
    assert big.weights[-1] == pytest.approx([3.0, 3.0], abs=0.2)
