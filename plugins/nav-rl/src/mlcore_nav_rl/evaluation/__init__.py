"""Evaluation: seeded episodes, robustness wrappers, baselines, the ``nav`` evaluator, statistics."""

from __future__ import annotations
