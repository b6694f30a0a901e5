"""Linear systems and finite-horizon optimal-control solvers (NumPy/SciPy, vectorised over problems)."""

from __future__ import annotations

from mlcore_trc_control.lqr.solvers import ExpertSolution, quadratic_cost, rollout, solve_expert
from mlcore_trc_control.lqr.systems import SYSTEMS, LinearSystem, build_system

__all__ = ["SYSTEMS", "ExpertSolution", "LinearSystem", "build_system", "quadratic_cost", "rollout", "solve_expert"]
