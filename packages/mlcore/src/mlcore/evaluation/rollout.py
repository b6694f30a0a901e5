"""Multi-step (autoregressive) rollout metrics for supervised dynamics models.

A dynamics model predicts the next state from a history window; rolled out, it feeds its own
predictions back for ``H`` steps. These helpers score such rollouts:

- :func:`autoregressive_rollout`: roll any one-step predictor forward ``H`` steps, sliding the
  history window over its own predictions and the known exogenous inputs (actions, weather, ...).
- :func:`horizon_errors`: the mean squared error at each horizon step ``1..H`` (the error curve).
- :func:`group_errors`: the mean squared error of named slices of the state (``position``, ...).
- :func:`rollout_metrics`: both as one flat ``dict[str, float]`` for ``metrics.json``.

Example::

    import torch
    from mlcore.evaluation.rollout import rollout_metrics

    pred = torch.zeros(8, 50, 12)           # (samples, horizon, state)
    true = torch.ones(8, 50, 12)
    groups = {"position": slice(0, 3), "velocity": slice(3, 6)}
    rollout_metrics(pred, true, groups=groups, horizons=(1, 10, 50))
    # {"rollout_mse/h1": 1.0, "rollout_mse/h10": 1.0, "rollout_mse/h50": 1.0,
    #  "rollout_mse/mean": 1.0, "mse/position": 1.0, "mse/velocity": 1.0, "rollout_mse/position": 1.0, ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Groups", "autoregressive_rollout", "group_errors", "horizon_errors", "rollout_metrics"]

#: Named slices of the state's last axis: a ``slice`` or a sequence of indices per name.
Groups = Mapping[str, slice | Sequence[int]]


def _check_same(pred: torch.Tensor, true: torch.Tensor, what: str) -> None:
    if tuple(pred.shape) != tuple(true.shape):
        raise ValueError(f"{what}: predictions have shape {tuple(pred.shape)}, targets {tuple(true.shape)}")


def horizon_errors(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error at each horizon step: shape ``(H,)`` from ``(N, H, D)`` rollouts.

    Entry ``k`` is the MSE over samples and state dimensions of the ``k+1``-step prediction.
    """
    _check_same(predictions, targets, "horizon_errors")
    if predictions.dim() != 3:
        raise ValueError(f"horizon_errors needs (samples, horizon, state) tensors, got {tuple(predictions.shape)}")
    err = (predictions.double() - targets.double()).pow(2)
    return err.mean(dim=(0, 2))


def group_errors(predictions: torch.Tensor, targets: torch.Tensor, groups: Groups) -> dict[str, float]:
    """MSE of each named slice of the last (state) axis, over all other axes.

    ``groups`` maps a name to a ``slice`` or a list of indices, e.g.
    ``{"position": slice(0, 3), "attitude": [6, 7, 8]}``. An index outside the state is a ``ValueError``.
    """
    _check_same(predictions, targets, "group_errors")
    size = predictions.shape[-1]
    err = (predictions.double() - targets.double()).pow(2)
    out: dict[str, float] = {}
    for name, where in groups.items():
        index = list(range(size))[where] if isinstance(where, slice) else list(where)
        if not index or any(not 0 <= i < size for i in index):
            raise ValueError(f"group {name!r} selects {where!r}, outside a state of size {size}")
        out[name] = err[..., index].mean().item()
    return out


def rollout_metrics(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    *,
    groups: Groups | None = None,
    horizons: Sequence[int] = (1, 10, 50),
) -> dict[str, float]:
    """Flat rollout figures from ``(N, H, D)`` predictions and targets.

    Returns ``rollout_mse/h<k>`` for each ``k`` in ``horizons`` not beyond ``H``, ``rollout_mse/mean``
    (the curve's mean), and per group ``mse/<group>`` (one-step) and ``rollout_mse/<group>`` (over
    all ``H`` steps).
    """
    curve = horizon_errors(predictions, targets)
    steps = curve.shape[0]
    out = {f"rollout_mse/h{k}": curve[k - 1].item() for k in horizons if 1 <= k <= steps}
    out["rollout_mse/mean"] = curve.mean().item()
    if groups:
        out.update({f"mse/{k}": v for k, v in group_errors(predictions[:, :1], targets[:, :1], groups).items()})
        out.update({f"rollout_mse/{k}": v for k, v in group_errors(predictions, targets, groups).items()})
    return out


def autoregressive_rollout(
    step: Callable[[torch.Tensor, Any], torch.Tensor],
    history: torch.Tensor,
    horizon: int,
    exogenous: Any = None,
) -> torch.Tensor:
    """Roll a one-step predictor forward ``horizon`` steps on its own predictions.

    Args:
        step: ``step(states, exo) -> next_state``: ``states`` is a ``(N, L, D)`` window, ``exo`` the
            matching window of the exogenous inputs (or ``None``); returns ``(N, D)``.
        history: ``(N, L, D)`` known states ending at time ``t``.
        horizon: number of steps ``H`` to predict (``t+1 .. t+H``).
        exogenous: ``None``, a tensor ``(N, L + H - 1, E)`` or a dict of such tensors (actions,
            weather, time stamps, ...) aligned with the states: entry ``i`` belongs to the state at
            window position ``i``. Each step sees the ``L`` entries aligned with its window.

    Returns:
        ``(N, H, D)`` predictions. The window slides by one each step: the oldest state drops out,
        the prediction is appended.
    """
    import torch

    if history.dim() != 3:
        raise ValueError(f"history must be (samples, window, state), got {tuple(history.shape)}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    length = history.shape[1]

    def window(value: Any, k: int) -> Any:
        if value is None:
            return None
        if isinstance(value, Mapping):
            return {key: window(v, k) for key, v in value.items()}
        if value.shape[1] < length + horizon - 1:
            raise ValueError(
                f"exogenous inputs cover {value.shape[1]} steps; a window of {length} rolled {horizon} steps "
                f"needs {length + horizon - 1}"
            )
        return value[:, k : k + length]

    states = history
    outputs = []
    for k in range(horizon):
        nxt = step(states, window(exogenous, k))
        outputs.append(nxt)
        states = torch.cat([states[:, 1:], nxt.unsqueeze(1)], dim=1)
    return torch.stack(outputs, dim=1)
