"""Generic classification evaluator: accuracy, macro-F1 and cross-entropy on the evaluation split."""

from __future__ import annotations

from typing import Any

import attrs

from mlcore.config import non_negative, positive
from mlcore.errors import MlcoreError
from mlcore.evaluation import Evaluator

__all__ = ["ClassificationEvaluator", "ClassificationEvaluatorConfig", "classification_metrics"]


@attrs.define
class ClassificationEvaluatorConfig:
    """Config of :class:`ClassificationEvaluator`.

    Attributes:
        batch_size: evaluation batch size.
        num_classes: number of classes; 0 infers it from the logits' class dimension.
        per_class: also report ``f1/<k>`` for every class.
    """

    batch_size: int = attrs.field(default=256, validator=positive)
    num_classes: int = attrs.field(default=0, validator=non_negative)
    per_class: bool = False


def _flatten(logits: Any, targets: Any) -> tuple[Any, Any]:
    """Logits ``(N, C, *extra)`` -> ``(M, C)``; labels ``(N, *extra)`` (or one-hot/probabilities) -> ``(M,)``."""
    import torch

    if isinstance(logits, list | tuple) and logits and isinstance(logits[0], torch.Tensor):
        logits = logits[0]
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise MlcoreError("classification evaluator needs tensor logits and tensor targets")
    logits = logits.detach().to(torch.float64)
    if logits.dim() == 1:
        logits = logits.unsqueeze(1)  # a single binary logit per sample
    if targets.is_floating_point() and targets.shape == logits.shape and logits.shape[1] > 1:
        targets = targets.argmax(dim=1)  # one-hot or class probabilities
    targets = targets.detach()
    if targets.dim() == logits.dim() and targets.shape[1] == 1:
        targets = targets.squeeze(1)
    if logits.dim() > 2:
        logits = logits.movedim(1, -1)
    logits = logits.reshape(-1, logits.shape[-1])
    labels = targets.reshape(-1).round().long()
    if labels.shape[0] != logits.shape[0]:
        raise MlcoreError(
            f"classification evaluator: {logits.shape[0]} predictions but {labels.shape[0]} labels "
            "(expected logits (N, C, ...) and integer labels (N, ...))"
        )
    return logits, labels


def classification_metrics(
    logits: Any, targets: Any, *, num_classes: int = 0, per_class: bool = False
) -> dict[str, float]:
    """Accuracy, macro-F1 and mean cross-entropy from logits and integer labels.

    A single logit per sample is read as a binary classifier (sigmoid). Macro-F1 averages the
    per-class F1 over the classes that occur in the labels or the predictions (as scikit-learn).
    """
    import torch
    from torch.nn import functional as F

    scores, labels = _flatten(logits, targets)
    if scores.shape[1] == 1:  # binary: one logit
        if labels.min() < 0 or labels.max() > 1:
            raise MlcoreError("classification evaluator: a single logit needs labels in {0, 1}")
        pred = (scores[:, 0] > 0).long()
        ce = F.binary_cross_entropy_with_logits(scores[:, 0], labels.to(torch.float64)).item()
        n_classes = 2
    else:
        n_classes = num_classes or scores.shape[1]
        if scores.shape[1] != n_classes:
            raise MlcoreError(
                f"classification evaluator: logits have {scores.shape[1]} classes, config says {n_classes}"
            )
        if labels.min() < 0 or labels.max() >= n_classes:
            raise MlcoreError(f"classification evaluator: labels must lie in [0, {n_classes - 1}]")
        pred = scores.argmax(dim=1)
        ce = F.cross_entropy(scores, labels).item()
    confusion = torch.bincount(labels * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = confusion.diag().to(torch.float64)
    support = confusion.sum(dim=1).to(torch.float64)  # true counts per class
    predicted = confusion.sum(dim=0).to(torch.float64)
    denom = support + predicted
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.zeros_like(tp))
    present = denom > 0
    out = {
        "accuracy": (pred == labels).to(torch.float64).mean().item(),
        "macro_f1": f1[present].mean().item(),
        "cross_entropy": ce,
        "num_samples": float(labels.shape[0]),
    }
    if per_class:
        for k in range(n_classes):
            out[f"f1/{k}"] = f1[k].item()
    return out


class ClassificationEvaluator(Evaluator):
    """Accuracy, macro-F1 and cross-entropy of ``model(inputs)`` logits on ``data.eval_set()``.

    Example::

        from mlcore.evaluation.classification import ClassificationEvaluator

        metrics = ClassificationEvaluator().evaluate(model, data, out_dir="runs/x")
        # {"accuracy": ..., "macro_f1": ..., "cross_entropy": ..., "num_samples": ...}
    """

    metrics = ("accuracy", "macro_f1", "cross_entropy")

    def __init__(self, config: ClassificationEvaluatorConfig | None = None) -> None:
        super().__init__(config or ClassificationEvaluatorConfig())

    def compute(self, predictions: Any, targets: Any) -> dict[str, float]:
        """The classification figures for the whole split."""
        return classification_metrics(
            predictions, targets, num_classes=self.config.num_classes, per_class=self.config.per_class
        )
