"""Config of :class:`~mlcore_trc_control.models.trc.TinyRecursiveControl` (no torch import here)."""

from __future__ import annotations

from typing import Any

import attrs

from mlcore.config import in_range, non_negative, one_of, positive

__all__ = ["SIZES", "TRCConfig"]

#: Size presets: latent width, MLP hidden width, residual blocks in the shared core, cycles.
SIZES: dict[str, dict[str, int]] = {
    "small": {"latent_dim": 75, "hidden_dim": 300, "num_layers": 2, "num_outer_cycles": 3, "num_inner_cycles": 3},
    "medium": {"latent_dim": 170, "hidden_dim": 680, "num_layers": 2, "num_outer_cycles": 3, "num_inner_cycles": 3},
    "large": {"latent_dim": 380, "hidden_dim": 1520, "num_layers": 2, "num_outer_cycles": 3, "num_inner_cycles": 3},
}


def _optional_positive(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if value is not None:
        positive(inst, attribute, value)


@attrs.define
class TRCConfig:
    """Config of :class:`TinyRecursiveControl` (section ``model`` of the ``trc`` pipeline).

    Attributes:
        size: ``small`` (~105K params), ``medium`` (~530K) or ``large`` (~2.6M).
        latent_dim, hidden_dim, num_layers, num_outer_cycles, num_inner_cycles: override the
            size preset (``None`` = preset).
        state_dim, control_dim, num_steps: problem shape (the ``trc`` pipeline fills them from
            the data set; defaults: the double integrator, 15 steps).
        gradient: ``per_cycle`` | ``full`` | ``last`` (see the module docstring).
        deep_supervision: supervise every outer cycle (``True``) or only the last.
        cycle_weighting: ``balanced`` | ``uniform`` (see the module docstring).
        rollout_weight: weight of the terminal-state rollout loss (0 = off).
        cost_weight: weight of the relative LQR-cost rollout loss (0 = off).
        dropout: dropout inside the core MLP.
        terminal_projection: project every cycle's controls onto ``x_N = r`` (exact for the
            linear system) alternated with clamping to the box, ending with the clamp
            (:class:`~mlcore_trc_control.models.projection.TerminalProjection`).
        projection_horizons: ``[T_min, T_max]`` makes the projection horizon-aware: each problem is
            projected with the exact discretisation of its own horizon (input ``T``), computed inside
            the model from the continuous-time model (the ``trc`` pipeline sets it from
            ``dataset.horizon_range`` on a linear system; ``None`` = the system's one horizon).
        projection_iterations: clamp/project alternations after the first projection (20; on a
            quick-profile model 3 left a mean terminal error of 0.06, 10 left 7e-4, 30 left 0).
        output_bound: map the decoded controls smoothly into the box,
            ``u = limit * tanh(u_raw / limit)`` (the ``trc`` pipeline turns it on, and the linear
            terminal projection off, for the nonlinear systems).
    """

    size: str = attrs.field(default="medium", validator=one_of(*SIZES))
    latent_dim: int | None = attrs.field(default=None, validator=_optional_positive)
    hidden_dim: int | None = attrs.field(default=None, validator=_optional_positive)
    num_layers: int | None = attrs.field(default=None, validator=_optional_positive)
    num_outer_cycles: int | None = attrs.field(default=None, validator=_optional_positive)
    num_inner_cycles: int | None = attrs.field(default=None, validator=_optional_positive)
    state_dim: int = attrs.field(default=2, validator=positive)
    control_dim: int = attrs.field(default=1, validator=positive)
    num_steps: int = attrs.field(default=15, validator=positive)
    gradient: str = attrs.field(default="per_cycle", validator=one_of("per_cycle", "full", "last"))
    deep_supervision: bool = True
    cycle_weighting: str = attrs.field(default="balanced", validator=one_of("balanced", "uniform"))
    rollout_weight: float = attrs.field(default=0.0, validator=non_negative)
    cost_weight: float = attrs.field(default=0.0, validator=non_negative)
    dropout: float = attrs.field(default=0.0, validator=in_range(0, 1, high_open=True))
    terminal_projection: bool = True
    projection_horizons: list[float] | None = None
    projection_iterations: int = attrs.field(default=20, validator=non_negative)
    output_bound: bool = False

    def resolved(self) -> dict[str, int]:
        """The preset of ``size`` with the explicit overrides applied."""
        out = dict(SIZES[self.size])
        for key in out:
            value = getattr(self, key)
            if value is not None:
                out[key] = int(value)
        return out
