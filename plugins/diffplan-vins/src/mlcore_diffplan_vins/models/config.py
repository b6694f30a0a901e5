"""Configs shared by the grid planners (no torch import here).

Every planner is built as ``Cls(config)`` from an attrs config that subclasses
:class:`PlannerConfig`, so the common fields keep one name everywhere: ``k`` (value-iteration
steps), ``hidden_channels`` (l_h), ``q_channels`` (l_q), ``num_actions`` and ``kernel_size``.
Symmetric models add ``group = "d4"``; deep-equilibrium models ``max_iter``, ``tol``, ``solver``.
"""

from __future__ import annotations

from typing import Any

import attrs

from mlcore.config import in_range, one_of

__all__ = ["CNNConfig", "PlannerConfig", "VINConfig", "odd_kernel"]


def odd_kernel(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    """Validator: an odd kernel size in [1, 15] (so ``padding = k // 2`` keeps the map size)."""
    if not isinstance(value, int) or value < 1 or value > 15 or value % 2 == 0:
        raise ValueError(f"{attribute.name}={value!r} is out of range (allowed: odd, 1 to 15)")


@attrs.define
class PlannerConfig:
    """Fields every grid planner shares (section ``model``).

    Attributes:
        k: value-iteration (or recurrent planning) steps K.
        hidden_channels: channels of the hidden layer that turns (obstacles, goal) into a reward (l_h).
        q_channels: channels of the Q map, one or more per action (l_q).
        num_actions: 4 (``4abs-cc``: N, W, S, E) or 8; the pipeline sets it from the data set.
        kernel_size: kernel of the transition convolution (odd).
    """

    k: int = attrs.field(default=20, validator=in_range(1, 1000))
    hidden_channels: int = attrs.field(default=150, validator=in_range(1, 4096))
    q_channels: int = attrs.field(default=40, validator=in_range(1, 4096))
    num_actions: int = attrs.field(default=4, validator=one_of(4, 8))
    kernel_size: int = attrs.field(default=3, validator=odd_kernel)


@attrs.define
class VINConfig(PlannerConfig):
    """Config of :class:`~mlcore_diffplan_vins.models.vin.VIN` (Tamar et al., 2016)."""


@attrs.define
class CNNConfig(PlannerConfig):
    """Config of the baseline :class:`~mlcore_diffplan_vins.models.cnn.PlainCNN` (no value iteration).

    ``k`` is the number of 3×3 convolution layers, ``hidden_channels`` their width.
    """

    k: int = attrs.field(default=8, validator=in_range(1, 1000))
    hidden_channels: int = attrs.field(default=64, validator=in_range(1, 4096))
