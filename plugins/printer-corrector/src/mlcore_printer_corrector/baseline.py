"""The linear baseline: least squares from the same normalised windows to the error (an FIR/ARX model).

The learned model sees only the reference (no measured error), so the baseline gets exactly the
same inputs: every sample of the window (``T x 4`` regressors + bias), i.e. an ARX model with
exogenous terms only (no autoregressive output terms, which would need a sensor). A small ridge
term keeps the normal equations well conditioned; ``scipy.linalg.lstsq`` solves them.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

__all__ = ["LinearBaseline"]


@attrs.define
class LinearBaseline:
    """``error = W · vec(window) + b``, fitted on the training windows.

    Attributes:
        weights: ``(T * 4 + 1, 2)`` coefficients (the last row is the bias).
        ridge: the L2 penalty used in the fit.
    """

    weights: np.ndarray
    ridge: float

    @staticmethod
    def design(windows: torch.Tensor | np.ndarray) -> np.ndarray:
        """``(N, T*4 + 1)`` regressors: the flattened window and a constant."""
        x = np.asarray(windows, dtype=np.float64).reshape(len(windows), -1)
        return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)

    @classmethod
    def fit(
        cls, windows: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray, ridge: float = 1e-3
    ) -> LinearBaseline:
        """Ridge least squares on ``windows (N, T, 4)`` -> ``targets (N, 2)``."""
        from scipy import linalg

        a = cls.design(windows)
        y = np.asarray(targets, dtype=np.float64)
        n_features = a.shape[1]
        penalty = np.sqrt(ridge * a.shape[0]) * np.eye(n_features)
        penalty[-1, -1] = 0.0  # the bias is not penalised
        w, *_ = linalg.lstsq(np.vstack([a, penalty]), np.vstack([y, np.zeros((n_features, y.shape[1]))]))
        return cls(weights=w, ridge=ridge)

    def predict(self, windows: torch.Tensor | np.ndarray) -> np.ndarray:
        """Predictions ``(N, 2)`` in the units of the fitted targets."""
        return self.design(windows) @ self.weights  # type: ignore[no-any-return]
