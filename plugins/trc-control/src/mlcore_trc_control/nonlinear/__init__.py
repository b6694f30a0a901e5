"""Nonlinear systems (pendulum, Van der Pol, rocket landing), their experts, iLQR and a torch simulator."""

from mlcore_trc_control.nonlinear.systems import (
    NONLINEAR_SYSTEMS,
    NonlinearSystem,
    build_nonlinear_system,
    is_nonlinear,
    system_from_dict,
)

__all__ = ["NONLINEAR_SYSTEMS", "NonlinearSystem", "build_nonlinear_system", "is_nonlinear", "system_from_dict"]
