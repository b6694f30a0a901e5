"""Configs of the symmetric, equilibrium and gated planners (no torch import here).

All subclass :class:`~mlcore_diffplan_vins.models.config.PlannerConfig` (``k``,
``hidden_channels``, ``q_channels``, ``num_actions``, ``kernel_size``). In the symmetric models
(``group = "d4"``) ``hidden_channels`` and ``q_channels`` count *regular fields* of 8 channels
each, as e2cnn's field types do in the reference code. The deep-equilibrium models add the
root-finder settings ``solver``, ``max_iter``, ``tol`` and ``anderson_memory``.
"""

from __future__ import annotations

import attrs

from mlcore.config import in_range, one_of
from mlcore_diffplan_vins.models.config import PlannerConfig

__all__ = [
    "ConvGPPNConfig",
    "DESymVINConfig",
    "DEVINConfig",
    "GPPNConfig",
    "SymGPPNConfig",
    "SymVINConfig",
]

#: Symmetry groups the hand-written equivariant layers implement.
GROUPS = ("d4",)
#: Root finders of the deep-equilibrium planners.
SOLVERS = ("anderson", "forward")


@attrs.define
class SymVINConfig(PlannerConfig):
    """Config of :class:`~mlcore_diffplan_vins.models.symvin.SymVIN` (Zhao et al., ICLR 2023).

    Attributes:
        k: value-iteration steps (the reference's default 10).
        hidden_channels: regular D4 fields of the hidden layer (8 channels each; the default 20
            = 160 channels, about the reference's 150 invariant channels).
        q_channels: regular D4 fields of the Q map (the reference's default 40, i.e. 320 channels).
        group: the symmetry group; only ``d4`` (rotations by 90° and reflections).
    """

    k: int = attrs.field(default=10, validator=in_range(1, 1000))
    hidden_channels: int = attrs.field(default=20, validator=in_range(1, 4096))
    q_channels: int = attrs.field(default=40, validator=in_range(1, 4096))
    group: str = attrs.field(default="d4", validator=one_of(*GROUPS))


@attrs.define
class DEVINConfig(PlannerConfig):
    """Config of :class:`~mlcore_diffplan_vins.models.deq.DEVIN`: VIN's value map solved as a fixed point.

    Attributes:
        k: unused by the solver (the fixed point replaces the K steps); kept for the shared interface.
        solver: ``anderson`` (Anderson acceleration) or ``forward`` (plain fixed-point iteration),
            used for the forward fixed point and for the adjoint fixed point of the backward pass.
        max_iter: root-finder iterations at most (forward and backward each).
        tol: stop when ``|f(v) - v| / |f(v)|`` falls below it.
        anderson_memory: past iterates Anderson mixes (at least 2).
    """

    k: int = attrs.field(default=10, validator=in_range(1, 1000))
    solver: str = attrs.field(default="anderson", validator=one_of(*SOLVERS))
    max_iter: int = attrs.field(default=50, validator=in_range(1, 10000))
    tol: float = attrs.field(default=1e-4, validator=in_range(0.0, 1.0, low_open=True))
    anderson_memory: int = attrs.field(default=5, validator=in_range(2, 100))


@attrs.define
class DESymVINConfig(SymVINConfig):
    """Config of :class:`~mlcore_diffplan_vins.models.deq.DESymVIN`: SymVIN's value map solved as a fixed point.

    The root-finder fields are those of :class:`DEVINConfig`.
    """

    solver: str = attrs.field(default="anderson", validator=one_of(*SOLVERS))
    max_iter: int = attrs.field(default=50, validator=in_range(1, 10000))
    tol: float = attrs.field(default=1e-4, validator=in_range(0.0, 1.0, low_open=True))
    anderson_memory: int = attrs.field(default=5, validator=in_range(2, 100))


@attrs.define
class GPPNConfig(PlannerConfig):
    """Config of :class:`~mlcore_diffplan_vins.models.gppn.GPPN` (Lee et al., ICML 2018).

    Attributes:
        k: recurrent planning steps.
        hidden_channels: LSTM state size per cell (l_h; the reference uses it for every hidden layer).
        kernel_size: kernel of the convolution that feeds each cell's LSTM from its neighbours.
        q_channels: unused (the reference GPPN has no separate Q width).
    """

    k: int = attrs.field(default=20, validator=in_range(1, 1000))


@attrs.define
class ConvGPPNConfig(PlannerConfig):
    """Config of :class:`~mlcore_diffplan_vins.models.gppn.ConvGPPN`: GPPN with a convolutional LSTM.

    Attributes:
        hidden_channels: channels of the hidden layer that makes the reward map.
        q_channels: channels of the convolutional LSTM state.
    """

    k: int = attrs.field(default=20, validator=in_range(1, 1000))


@attrs.define
class SymGPPNConfig(PlannerConfig):
    """Config of :class:`~mlcore_diffplan_vins.models.gppn.SymGPPN`: ConvGPPN with D4 group convolutions.

    Attributes:
        hidden_channels: regular D4 fields of the hidden layer.
        q_channels: regular D4 fields of the LSTM state (default 5 = 40 channels, the width of
            ConvGPPN's default state; the reference's ``divide_by_size`` option).
        group: the symmetry group; only ``d4``.
    """

    k: int = attrs.field(default=20, validator=in_range(1, 1000))
    hidden_channels: int = attrs.field(default=20, validator=in_range(1, 4096))
    q_channels: int = attrs.field(default=5, validator=in_range(1, 4096))
    group: str = attrs.field(default="d4", validator=one_of(*GROUPS))
