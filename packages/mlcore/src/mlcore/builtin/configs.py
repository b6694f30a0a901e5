"""Config classes of the built-in losses, apart from :mod:`mlcore.losses` so reading them never imports torch.

``mlcore show loss huber`` imports only this module; :mod:`mlcore.losses` re-exports the classes.
"""

from __future__ import annotations

import attrs

from mlcore.config import in_range, positive

__all__ = ["CrossEntropyConfig", "HuberConfig", "HybridConfig"]


@attrs.define
class HuberConfig:
    """Config of :class:`mlcore.losses.HuberLoss`.

    Attributes:
        delta: error size where the loss turns from quadratic to linear (> 0).
    """

    delta: float = attrs.field(default=1.0, validator=positive)


@attrs.define
class CrossEntropyConfig:
    """Config of :class:`mlcore.losses.CrossEntropyLoss`.

    Attributes:
        label_smoothing: mass spread uniformly over all classes, in ``[0, 1)``.
    """

    label_smoothing: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, high_open=True))


@attrs.define
class HybridConfig:
    """Config of :class:`mlcore.losses.HybridLoss`.

    Attributes:
        ratio: weight of the MAE term, in ``[0, 1]``; MSE gets ``1 - ratio``.
    """

    ratio: float = attrs.field(default=0.5, validator=in_range(0.0, 1.0))
