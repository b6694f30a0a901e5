"""The ``printer-corrector`` pipeline, as a recipe: simulate -> train -> evaluate -> compare -> deploy -> report.

``mlcore run --plugin printer-corrector [--profile quick|full]``. The core builds the parts, checks
one batch, trains (AdamW, batch 256, optional mixed precision / gradient accumulation / early
stopping, TensorBoard with gradient histograms and inference time) and runs the
``tracking_error`` evaluator; this module adds what is particular to the printer:

- the linear (ARX) baseline fitted on the same training windows and scored on the same test windows;
- TorchScript and ONNX exports with a dynamic batch axis, each checked against the eager model;
- the streaming latency of the TorchScript model on one thread (:class:`.StreamingPredictor`);
- feed-forward compensation on held-out layers, re-simulated (:mod:`.compensation`);
- ``report.md`` sections that read as a results section.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from mlcore.config import ComponentConfig, component_field, in_range
from mlcore.data import DataModule
from mlcore.errors import MlcoreError
from mlcore.io import atomic_write_json
from mlcore.pipelines import Parts, Recipe, RecipePipeline, RunContext
from mlcore.pipelines.recipe import ExportConfig
from mlcore.training import TrainerConfig
from mlcore_printer_corrector.data import STATS_FILE, PrinterDataConfig
from mlcore_printer_corrector.evaluation import TrackingEvaluatorConfig
from mlcore_printer_corrector.model import RealtimeCorrectorConfig

log = logging.getLogger(__name__)

__all__ = ["CompareConfig", "PrinterPipeline", "PrinterPipelineConfig"]


def _trainer_defaults() -> TrainerConfig:
    return TrainerConfig(
        epochs=40,
        batch_size=256,
        optimizer="adamw",
        lr=2e-3,
        weight_decay=1e-4,
        patience=8,
        grad_clip=1.0,
        callbacks=["grad_histograms", "inference_time"],
    )


@attrs.define
class CompareConfig:
    """What the pipeline measures beyond the evaluator.

    Attributes:
        baseline: fit and score the linear (ARX) baseline on the same windows.
        ridge: its L2 penalty.
        onnx: also export to ONNX (needs ``onnx``/``onnxruntime``: ``pip install mlcore-printer-corrector[onnx]``).
        streaming_samples: samples fed one by one to the TorchScript :class:`.StreamingPredictor` (0 = skip).
        compensation_layers: held-out layers re-simulated with feed-forward compensation (0 = skip).
        compensation_gain: the share of the (low-passed) predicted error added to the reference.
        compensation_cutoff_hz: cut-off of the zero-phase low-pass applied to the prediction first (0 = none).
    """

    baseline: bool = True
    ridge: float = attrs.field(default=1e-3, validator=in_range(0.0, 1e6))
    onnx: bool = True
    streaming_samples: int = attrs.field(default=2000, validator=in_range(0, 10_000_000))
    compensation_layers: int = attrs.field(default=4, validator=in_range(0, 10_000))
    compensation_gain: float = attrs.field(default=1.0, validator=in_range(0.0, 2.0))
    compensation_cutoff_hz: float = attrs.field(default=15.0, validator=in_range(0.0, 10000.0))


@attrs.define
class PrinterPipelineConfig:
    """Config of the ``printer-corrector`` pipeline: one table per part.

    Attributes:
        dataset: the simulated layers (``[dataset]``, with ``[dataset.slicing]``, ``[dataset.planner]``,
            ``[dataset.dynamics]``); its window length sizes the model.
        model: the LSTM (``[model]``).
        loss: ``mae``, ``mse`` or ``hybrid`` (default: ``0.7 * MAE + 0.3 * MSE``), any registered loss.
        trainer: the core trainer (``[trainer]``): batch 256, AdamW, early stopping by default.
        evaluator: the ``tracking_error`` evaluator (``[evaluator]``).
        export: the TorchScript export (``[export]``).
        compare: baseline, ONNX, streaming and compensation (``[compare]``).
    """

    dataset: PrinterDataConfig = attrs.field(factory=PrinterDataConfig, metadata={"mlcore_old_names": ("data",)})
    model: RealtimeCorrectorConfig = attrs.field(factory=RealtimeCorrectorConfig)
    loss: ComponentConfig = component_field("loss", "hybrid", {"ratio": 0.7})
    trainer: TrainerConfig = attrs.field(factory=_trainer_defaults)
    evaluator: TrackingEvaluatorConfig = attrs.field(factory=TrackingEvaluatorConfig)
    export: ExportConfig = attrs.field(factory=lambda: ExportConfig(format="torchscript"))
    compare: CompareConfig = attrs.field(factory=CompareConfig)


def _all_windows(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of a :class:`~.data.WindowDataset` at once (no noise): ``(N, T, 4)``, ``(N, 2)``."""
    idx = ds.starts[:, None] + torch.arange(ds.length)
    return ds.features[idx], ds.targets[ds.starts + ds.length - 1]


class PrinterPipeline(RecipePipeline[PrinterPipelineConfig]):
    """The recipe plus baseline, exports, streaming and compensation (see the module docstring)."""

    recipe = Recipe(
        dataset="printer_layers",
        model="realtime_corrector",
        loss="hybrid",
        evaluator="tracking_error",
        title="printer-corrector: real-time prediction of a 3D printer's tracking error",
    )

    def prepare_model(self, model: torch.nn.Module, data: DataModule) -> None:
        """Start the model's linear skip path at the least-squares (ARX) fit of the training windows."""
        from mlcore_printer_corrector.baseline import LinearBaseline

        skip = getattr(model, "skip", None)
        if skip is None or not hasattr(data, "raw"):
            return
        x, y = _all_windows(data.train_set())
        fit = LinearBaseline.fit(x, y, ridge=self.config.compare.ridge)
        with torch.no_grad():
            skip.weight.copy_(torch.from_numpy(fit.weights[:-1].T.copy()))
            skip.bias.copy_(torch.from_numpy(fit.weights[-1].copy()))
            head = getattr(model, "head", None)
            if head is not None:  # zero-initialised residual: the model starts as the linear fit
                head.weight.zero_()
                head.bias.zero_()

    def save_data(self, ctx: RunContext, config: PrinterPipelineConfig, data: DataModule) -> PrinterPipelineConfig:
        """Keep the splits, ``stats.json`` and the G-code with the run (``data/``); the checkpoint reads them back."""
        out = ctx.path("data")
        if not (out / STATS_FILE).exists():
            data.write(out)  # type: ignore[attr-defined]
        return attrs.evolve(config, dataset=attrs.evolve(config.dataset, path=str(out)))

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """The recipe's run; ``metrics.json`` then holds every figure (evaluator, baseline, deployment,
        compensation) and ``report.md`` reads as a results section."""
        metrics = super().run(ctx)
        atomic_write_json(ctx.out_dir / "metrics.json", metrics)
        parts = self.build(ctx)
        write_results_report(ctx, parts.config, parts.data, metrics, self.recipe.title)
        return metrics

    # ------------------------------------------------------------------ extra figures
    def extra_metrics(self, ctx: RunContext, parts: Parts[PrinterPipelineConfig]) -> dict[str, float]:
        """Baseline, ONNX export, streaming latency and compensation."""
        cfg = parts.config.compare
        out: dict[str, float] = {}
        model = parts.model.to("cpu").eval()
        if cfg.baseline:
            out.update(self.baseline(parts))
        if cfg.onnx:
            out.update(self.export_onnx(ctx, parts))
        if cfg.streaming_samples > 0:
            out.update(self.streaming(ctx, parts, model))
        if cfg.compensation_layers > 0:
            out.update(self.compensation(ctx, parts, model))
        return out

    def baseline(self, parts: Parts[PrinterPipelineConfig]) -> dict[str, float]:
        """The linear (ARX) baseline on the same windows: ``arx_*`` figures in mm."""
        from mlcore_printer_corrector.baseline import LinearBaseline
        from mlcore_printer_corrector.metrics import error_metrics

        data: Any = parts.data
        x_tr, y_tr = _all_windows(data.train_set())
        x_te, y_te = _all_windows(data.eval_set())
        fit = LinearBaseline.fit(x_tr, y_tr, ridge=parts.config.compare.ridge)
        pred = data.denormalise_targets(torch.from_numpy(fit.predict(x_te))).numpy()
        true = data.denormalise_targets(y_te.double()).numpy()
        m = error_metrics(pred, true, prefix="arx_")
        return {
            k: m[k]
            for k in ("arx_mae", "arx_rmse", "arx_r2", "arx_mae_um", "arx_rmse_um", "arx_p99", "arx_correlation")
        }

    def export_onnx(self, ctx: RunContext, parts: Parts[PrinterPipelineConfig]) -> dict[str, float]:
        """``model.onnx`` with a dynamic batch axis, checked against the eager model (skipped without onnx)."""
        from mlcore.exporting import export_model

        try:
            result = export_model(parts.model, None, ctx.path("model.onnx"), format="onnx", atol=1e-4, rtol=1e-4)
        except MlcoreError as exc:
            log.warning("ONNX export skipped: %s", exc)
            return {}
        ctx.write_json(
            "export_onnx.json", {**attrs.asdict(result), "path": str(result.path), "summary": result.summary()}
        )
        return {"onnx_ok": float(result.ok), "onnx_max_abs_diff": float(result.max_abs_diff)}

    def streaming(
        self, ctx: RunContext, parts: Parts[PrinterPipelineConfig], model: torch.nn.Module
    ) -> dict[str, float]:
        """Feed a held-out layer sample by sample to the TorchScript model on one thread; latency and agreement."""
        from mlcore_printer_corrector.compensation import predict_series
        from mlcore_printer_corrector.streaming import StreamingPredictor

        data: Any = parts.data
        stats, length = data.stats, data.config.sequence_length
        ts_path = ctx.out_dir / "model.ts"
        scripted = torch.jit.load(str(ts_path)) if ts_path.is_file() else torch.jit.script(model)
        scripted.eval()
        raw = data.raw["test"] if data.raw["test"]["features"].shape[0] else data.raw["train"]
        feats = raw["features"][: parts.config.compare.streaming_samples].double().numpy()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            predictor = StreamingPredictor(scripted, stats, length)
            got, lat = [], []
            for row in feats:
                ex, ey, ms = predictor.predict(*row)
                got.append((ex, ey))
                lat.append(ms)
        finally:
            torch.set_num_threads(threads)
        got_a = np.asarray(got)
        ref = predict_series(model, feats, stats, length)
        running = np.asarray(lat[length - 1 :])
        return {
            "streaming_mean_ms": float(running.mean()) if running.size else float("nan"),
            "streaming_p50_ms": float(np.percentile(running, 50)) if running.size else float("nan"),
            "streaming_p99_ms": float(np.percentile(running, 99)) if running.size else float("nan"),
            "streaming_max_abs_diff_mm": float(np.abs(got_a - ref).max()) if got_a.size else 0.0,
        }

    def compensation(
        self, ctx: RunContext, parts: Parts[PrinterPipelineConfig], model: torch.nn.Module
    ) -> dict[str, float]:
        """Re-simulate held-out layers with the prediction as feed-forward; RMS before/after (mm)."""
        from mlcore_printer_corrector.compensation import compensate_layer
        from mlcore_printer_corrector.plots import compensation_plot

        data: Any = parts.data
        dcfg = data.config
        units = data.raw["test"]["units"][: parts.config.compare.compensation_layers]
        if not units:
            return {}
        before, after, oracle = [], [], []
        for i, (source, layer) in enumerate(units):
            res = compensate_layer(
                data.toolpath(source).layer_path(int(layer)),
                model,
                data.stats,
                dcfg.sequence_length,
                dcfg.planner,
                dcfg.dynamics,
                dcfg.sample_rate,
                gain=parts.config.compare.compensation_gain,
                cutoff_hz=parts.config.compare.compensation_cutoff_hz,
            )
            n = res.before.error.shape[0] - (dcfg.sequence_length - 1)
            before.append((res.rms_before**2, n))
            after.append((res.rms_after**2, n))
            oracle.append((res.rms_oracle**2, n))
            if i == 0:
                compensation_plot(res.before.t, res.before.error, res.after.error, ctx.plots_dir / "compensation.png")

        def pooled(rows: list[tuple[float, int]]) -> float:
            return float(np.sqrt(sum(v * n for v, n in rows) / max(sum(n for _, n in rows), 1)))

        b, a, o = pooled(before), pooled(after), pooled(oracle)
        return {
            "comp_layers": float(len(units)),
            "comp_rms_before_um": b * 1000,
            "comp_rms_after_um": a * 1000,
            "comp_rms_oracle_um": o * 1000,
            "comp_reduction": 1.0 - a / b if b > 0 else 0.0,
            "comp_oracle_reduction": 1.0 - o / b if b > 0 else 0.0,
        }

    # ------------------------------------------------------------------ report
    def report_sections(
        self, ctx: RunContext, parts: Parts[PrinterPipelineConfig], metrics: dict[str, float]
    ) -> list[tuple[str, str]]:
        """Data, accuracy against the baseline, real time, compensation, plots."""
        return report_sections(parts.config, parts.data, metrics)


def report_sections(config: PrinterPipelineConfig, data: Any, m: dict[str, float]) -> list[tuple[str, str]]:
    """The results-section prose of ``report.md`` (figures from ``m``)."""
    d, mc = config.dataset, config.model
    raw = data.raw
    n_layers = {s: len(raw[s]["units"]) for s in ("train", "val", "test")}
    sources = sorted({u[0] for s in raw.values() for u in s["units"]})
    sections = []
    sections.append(
        (
            "Data",
            f"{sum(n_layers.values())} simulated layers ({', '.join(sources)}; layers `{d.layers}`), split by layer "
            f"{n_layers['train']}/{n_layers['val']}/{n_layers['test']} (train/val/test, seed {d.seed}); "
            f"{int(raw['train']['features'].shape[0])} training samples at {d.sample_rate:g} Hz, windows of "
            f"{d.sequence_length} samples ({d.sequence_length / d.sample_rate:.2f} s), stride {d.stride}. "
            f"Planner: {d.planner.acceleration:g} mm/s², junction deviation {d.planner.junction_deviation:g} mm, "
            f"look-ahead {d.planner.lookahead}. Axes: X {d.dynamics.freq_x:g} Hz / ζ {d.dynamics.damping_x:g}, "
            f"Y {d.dynamics.freq_y:g} Hz / ζ {d.dynamics.damping_y:g}, "
            f"±{d.dynamics.position_variation:.0%} over the bed, "
            f"{d.dynamics.steps_per_mm:g} steps/mm. The simulated tracking error on the test layers has an RMS of "
            f"**{m.get('target_rms_um', float('nan')):.1f} μm**.",
        )
    )
    arx = ""
    if "arx_rmse_um" in m:
        ratio = m["arx_rmse_um"] / m["rmse_um"] if m["rmse_um"] > 0 else float("nan")
        arx = (
            "\n\n| model | MAE (μm) | RMSE (μm) | R² | p99 abs. error (μm) | correlation |\n"
            "|---|---|---|---|---|---|\n"
            f"| realtime_corrector ({mc.num_layers}×{mc.hidden_size}) | {m['mae_um']:.2f} | {m['rmse_um']:.2f} | "
            f"{m['r2']:.4f} | {m['p99'] * 1000:.2f} | {m['correlation']:.4f} |\n"
            f"| linear ARX baseline (same windows) | {m['arx_mae_um']:.2f} | {m['arx_rmse_um']:.2f} | "
            f"{m['arx_r2']:.4f} | "
            f"{m['arx_p99'] * 1000:.2f} | {m['arx_correlation']:.4f} |\n\n"
            f"The LSTM's RMS prediction error is **{ratio:.2f}×** lower than the linear baseline's."
        )
    sections.append(
        (
            "Prediction accuracy (held-out layers)",
            f"On {int(m.get('num_samples', 0))} test windows the model explains **R² = {m['r2']:.4f}** of the "
            f"error's variance (X {m['r2_x']:.4f}, Y {m['r2_y']:.4f}), with MAE {m['mae_um']:.2f} μm and "
            f"RMSE {m['rmse_um']:.2f} μm; "
            f"half of the predictions are within {m['p50'] * 1000:.2f} μm and 99 % within {m['p99'] * 1000:.2f} μm."
            + arx,
        )
    )
    rt = (
        f"One prediction (batch 1, eager PyTorch, one thread) takes {m['latency_mean_ms']:.3f} ms on average and "
        f"{m['latency_p99_ms']:.3f} ms at the 99th percentile (median {m['latency_p50_ms']:.3f} ms): "
        f"**{'PASS' if m['realtime_ok'] else 'FAIL'}** against the "
        f"{config.evaluator.budget_ms:g} ms real-time budget. Throughput at batch {config.evaluator.batch_size}: "
        f"{m['throughput_per_s']:.0f} windows/s."
    )
    if "streaming_p99_ms" in m:
        rt += (
            " Fed one sample at a time, the TorchScript model in `StreamingPredictor` takes "
            f"{m['streaming_mean_ms']:.3f} ms (median {m['streaming_p50_ms']:.3f} ms, "
            f"p99 {m['streaming_p99_ms']:.3f} ms) "
            "per sample and agrees with the batched model to "
            f"{m['streaming_max_abs_diff_mm'] * 1000:.2g} μm."
        )
    if "export_ok" in m:
        ok = "verified" if m["export_ok"] else "FAILED"
        rt += f" TorchScript export {ok} (max abs. diff {m['export_max_abs_diff']:.2g})"
        if "onnx_ok" in m:
            rt += f", ONNX {'verified' if m['onnx_ok'] else 'FAILED'} (max abs. diff {m['onnx_max_abs_diff']:.2g})"
        rt += ", both with a dynamic batch axis."
    sections.append(("Real time and deployment", rt))
    if "comp_reduction" in m:
        sections.append(
            (
                "Feed-forward compensation",
                f"On {int(m['comp_layers'])} held-out layers re-simulated with the reference pre-distorted by the "
                f"predicted error (low-passed at {config.compare.compensation_cutoff_hz:g} Hz, "
                f"gain {config.compare.compensation_gain:g}), the RMS tracking error goes from "
                f"{m['comp_rms_before_um']:.1f} μm to "
                f"**{m['comp_rms_after_um']:.1f} μm ({m['comp_reduction']:.1%} lower)**. "
                f"The same pre-distortion with the true error reaches {m['comp_rms_oracle_um']:.1f} μm "
                f"({m['comp_oracle_reduction']:.1%} lower): the limit of this one-shot scheme with a perfect predictor "
                "(a correction at 100 Hz cannot cancel the belt's 25-35 Hz ringing, which holds most of the error). "
                "See `plots/compensation.png`.",
            )
        )
    return sections


def write_results_report(
    ctx: RunContext, config: PrinterPipelineConfig, data: Any, metrics: dict[str, Any], title: str
) -> Path:
    """``report.md`` as a results section: what was run, the headline figures in prose and tables, the
    plots, and every metric in an appendix table (replaces the core's metrics-first layout)."""
    from mlcore.io import atomic_write_text
    from mlcore.report import metrics_table

    run = ctx.out_dir
    m = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    lines = [f"# {title}", ""]
    lines += [
        f"Profile `{ctx.profile}`, seed {ctx.seed}, device `{ctx.device}`: {int(m.get('epochs_run', 0))} epochs "
        f"(best {int(m.get('best_epoch', 0))}, {m.get('train_seconds', 0.0):.0f} s of training), model "
        f"`realtime_corrector` {config.model.num_layers}×{config.model.hidden_size} "
        f"({'with' if config.model.linear_skip else 'without'} the linear skip path), loss `{config.loss.name}`.",
        "",
    ]
    for heading, body in report_sections(config, data, m):
        lines += [f"## {heading}", "", body.rstrip(), ""]
    images = sorted(p.relative_to(run) for p in run.glob("*.png")) + sorted(
        p.relative_to(run) for p in run.glob("plots/*.png")
    )
    if images:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.as_posix()})" for p in images] + [""]
    lines += [
        "## All figures",
        "",
        "Lengths in mm unless the name ends in `_um`; latencies in ms; `comp_*` from the compensation runs.",
        "",
        metrics_table(m),
        "",
        "Files: `config.toml`, `metrics.json`, `training_stats.json`, `checkpoints/best.pt`, `model.ts`, `model.onnx`, "
        "`data/` (splits, `stats.json`, the G-code), `tensorboard/`.",
        "",
    ]
    return atomic_write_text(run / "report.md", "\n".join(lines))
