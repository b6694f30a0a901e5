"""The ``tracking_error`` evaluator: prediction accuracy in mm/μm, latency against the real-time budget, plots.

Writes ``metrics.json`` and, under ``plots/``, ``trajectory_comparison.png``, ``error_distribution.png``,
``error_correlation.png`` and ``per_axis_error.png``; ``predictions.npz`` when ``save_predictions``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import attrs
import numpy as np
import torch
from torch import nn

from mlcore.config import in_range, positive
from mlcore.data import DataModule
from mlcore.evaluation import Evaluator, predict
from mlcore.io import atomic_write
from mlcore_printer_corrector.metrics import error_metrics, latency_ms

log = logging.getLogger(__name__)

__all__ = ["TrackingErrorEvaluator", "TrackingEvaluatorConfig"]


@attrs.define
class TrackingEvaluatorConfig:
    """Config of :class:`TrackingErrorEvaluator`.

    Attributes:
        batch_size: batch size of the accuracy pass and of the throughput measurement.
        budget_ms: the real-time budget per prediction (ms); the pass/fail line compares the p99
            latency at batch 1 with it.
        latency_repeats: timed single-window predictions (after 20 warm-up calls).
        threads: torch threads during the latency measurement (1 = one CPU core).
        plots: draw the four plots; ``save_predictions``: write ``predictions.npz`` (mm).
    """

    batch_size: int = attrs.field(default=1024, validator=positive)
    budget_ms: float = attrs.field(default=1.0, validator=in_range(0.0, 1e6, low_open=True))
    latency_repeats: int = attrs.field(default=300, validator=in_range(10, 1_000_000))
    threads: int = attrs.field(default=1, validator=in_range(1, 256))
    plots: bool = True
    save_predictions: bool = False


class TrackingErrorEvaluator(Evaluator):
    """Accuracy of the predicted error in mm on the test layers, latency at batch 1, throughput and plots."""

    metrics = (
        "mae",
        "rmse",
        "r2",
        "mae_um",
        "rmse_um",
        "p99",
        "correlation",
        "latency_mean_ms",
        "latency_p99_ms",
        "throughput_per_s",
        "realtime_ok",
    )

    def __init__(self, config: TrackingEvaluatorConfig | None = None) -> None:
        super().__init__(config or TrackingEvaluatorConfig())

    def evaluate(
        self,
        model: nn.Module,
        data: DataModule,
        *,
        device: torch.device | str = "cpu",
        out_dir: str | Path | None = None,
    ) -> dict[str, float]:
        """Predict the test windows, convert to mm with the data's statistics, time the model, plot."""
        cfg = self.config
        data.prepare()
        pred_n, true_n = predict(
            model, data.eval_set(), batch_size=cfg.batch_size, device=device, collate_fn=data.collate_fn
        )
        pred, true = self._to_mm(data, pred_n), self._to_mm(data, true_n)
        metrics = error_metrics(pred, true)
        metrics["num_samples"] = float(pred.shape[0])
        metrics.update(self.timing(model, data))
        ok = metrics["latency_p99_ms"] < cfg.budget_ms
        metrics["realtime_ok"] = float(ok)
        log.info(
            "real-time budget %.3g ms: p99 latency %.3f ms at batch 1 -> %s",
            cfg.budget_ms,
            metrics["latency_p99_ms"],
            "PASS" if ok else "FAIL",
        )
        if out_dir is not None:
            out = Path(out_dir)
            if cfg.plots:
                from mlcore_printer_corrector.plots import evaluation_plots

                evaluation_plots(pred, true, metrics, out / "plots")
            if cfg.save_predictions:
                atomic_write(out / "predictions.npz", lambda fh: np.savez_compressed(fh, predicted=pred, true=true))
        return self.finish(metrics, out_dir)

    @staticmethod
    def _to_mm(data: DataModule, values: torch.Tensor) -> np.ndarray:
        denorm = getattr(data, "denormalise_targets", None)
        out = denorm(values.double()) if callable(denorm) else values.double()
        return out.numpy()  # type: ignore[no-any-return]

    def timing(self, model: nn.Module, data: DataModule) -> dict[str, float]:
        """Latency (mean, p99) of one window at batch 1 and throughput at ``batch_size``, on the CPU."""
        cfg = self.config
        test = data.eval_set()
        one = test[0][0].unsqueeze(0)
        n = min(cfg.batch_size, len(test))  # type: ignore[arg-type]
        batch = torch.stack([test[i][0] for i in range(n)])
        was_training = model.training
        param = next(model.parameters(), None)
        dev = param.device if param is not None else torch.device("cpu")
        cpu_model = model.to("cpu").eval()
        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            with torch.inference_mode():
                lat = latency_ms(lambda: cpu_model(one), repeats=cfg.latency_repeats)
                big = latency_ms(lambda: cpu_model(batch), repeats=5, warmup=1)
        finally:
            torch.set_num_threads(threads)
            model.to(dev).train(was_training)
        return {
            "latency_mean_ms": lat["mean"],
            "latency_p50_ms": lat["p50"],
            "latency_p99_ms": lat["p99"],
            "throughput_per_s": n / (big["mean"] / 1000.0),
        }
