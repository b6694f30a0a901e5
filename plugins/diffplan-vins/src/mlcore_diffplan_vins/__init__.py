"""mlcore-diffplan-vins: differentiable planners (VIN, SymVIN, DE-VINs, GPPNs) on grid mazes.

Importing this package is cheap (no torch, no numpy); the components live in submodules:

- :mod:`mlcore_diffplan_vins.actions` — the action sets (``4abs-cc``: N, W, S, E; 8 optional).
- :mod:`mlcore_diffplan_vins.models` — the planners; every one is ``Cls(config)`` with
  ``forward(maps [B, 2, M, M]) -> logits [B, A, M, M]`` (:mod:`mlcore_diffplan_vins.models.base`).
"""

from __future__ import annotations

__version__ = "0.1.0"
