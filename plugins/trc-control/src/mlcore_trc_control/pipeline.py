"""The ``trc`` pipeline: generate -> train -> evaluate -> compare -> export -> report.

``mlcore run --plugin trc-control`` runs it (profile ``quick`` by default in the README demo,
``full`` = 10K samples, 100 epochs, medium model). Override any field with ``--set``, e.g.
``--set model.size=medium --set trainer.epochs=5 --set data.system=planar_double_integrator``.

Run directory::

    data/lqr_train/lqr_dataset.npz, data/lqr_test/lqr_dataset.npz   the generated data sets
    checkpoints/best.pt, last.pt        (meta names model/dataset/evaluator: `mlcore evaluate` needs nothing else)
    training_stats.json, training_curves.png, tensorboard/
    metrics.json, evaluation_results.json                            the evaluator's figures
    comparison_results.json                                          baselines, cycle sweep, generalisation
    model.onnx                                                       verified against the eager model
    report.md, plots/comparison.png, plots/cycle_sweep.png
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlcore.config import in_range, one_of
from mlcore.errors import MlcoreError
from mlcore.pipelines import Pipeline
from mlcore.training.config import TrainerConfig
from mlcore_trc_control.comparison import ComparisonConfig
from mlcore_trc_control.data import DATA_FILE, LQRData, LQRDataConfig
from mlcore_trc_control.evaluation import TRCEvaluatorConfig
from mlcore_trc_control.models.config import TRCConfig

if TYPE_CHECKING:
    from mlcore.runs import RunContext

log = logging.getLogger(__name__)

__all__ = ["ExportConfig", "TRCPipeline", "TRCPipelineConfig"]

PLUGIN = "trc-control"


def _default_trainer() -> TrainerConfig:
    return TrainerConfig(epochs=100, batch_size=64, lr=1e-3, scheduler="cosine", monitor="val_final_mse", callbacks=[])


@attrs.define
class ExportConfig:
    """Config of the export stage (section ``export``).

    Attributes:
        enabled: export the trained model.
        format: ``onnx`` or ``torchscript``.
        atol: tolerance of the outputs-match check against the eager model.
    """

    enabled: bool = True
    format: str = attrs.field(default="onnx", validator=one_of("onnx", "torchscript"))
    atol: float = attrs.field(default=1e-4, validator=in_range(0, low_open=True))


@attrs.define
class TRCPipelineConfig:
    """Config of the ``trc`` pipeline: one section per stage.

    Attributes:
        data: the ``lqr`` data set (:class:`~mlcore_trc_control.data.LQRDataConfig`).
        model: TinyRecursiveControl (:class:`~mlcore_trc_control.models.config.TRCConfig`);
            ``state_dim``/``control_dim``/``num_steps`` are filled from the data.
        trainer: :class:`mlcore.training.TrainerConfig` (batch 64, lr 1e-3, cosine, 100 epochs,
            best checkpoint by the validation MSE of the final cycle, no gradient-histogram callback).
        evaluation: the ``trc`` evaluator.
        comparison: baselines, cycle sweep and generalisation suite.
        export: ONNX/TorchScript export with an outputs-match check.
        save_data: write the generated data sets into ``<run>/data/`` (the checkpoint then
            points at them) instead of keeping them in memory only.
    """

    data: LQRDataConfig = attrs.field(factory=LQRDataConfig)
    model: TRCConfig = attrs.field(factory=TRCConfig)
    trainer: TrainerConfig = attrs.field(factory=_default_trainer)
    evaluation: TRCEvaluatorConfig = attrs.field(factory=TRCEvaluatorConfig)
    comparison: ComparisonConfig = attrs.field(factory=ComparisonConfig)
    export: ExportConfig = attrs.field(factory=ExportConfig)
    save_data: bool = True


class TRCPipeline(Pipeline):
    """generate -> train -> evaluate -> compare -> export -> report (see the module docstring)."""

    def __init__(self, config: TRCPipelineConfig | None = None) -> None:
        super().__init__(config or TRCPipelineConfig())
        self.config: TRCPipelineConfig

    # ------------------------------------------------------------------ stages
    def prepare_data(self, ctx: RunContext) -> LQRData:
        """Generate (or reuse) the train/test files under ``<run>/data`` and return the data module."""
        cfg = self.config.data
        if self.config.save_data and cfg.path is None:
            train_dir = ctx.out_dir / "data" / "lqr_train"
            if not (train_dir / DATA_FILE).exists():
                LQRData(cfg).generate(train_dir)
            cfg = attrs.evolve(cfg, path=str((train_dir / DATA_FILE).resolve()))
            if cfg.test_path is None and cfg.test_num_samples > 0:
                test_dir = ctx.out_dir / "data" / "lqr_test"
                if not (test_dir / DATA_FILE).exists():
                    LQRData(
                        attrs.evolve(cfg, path=None, num_samples=cfg.test_num_samples, seed=cfg.test_seed)
                    ).generate(test_dir)
                cfg = attrs.evolve(cfg, test_path=str((test_dir / DATA_FILE).resolve()))
        data = LQRData(cfg).prepare()
        train = data.train_problems()
        log.info(
            "data: %d training problems of %s, expert=%s (%s)",
            len(train),
            data.system.name,
            train.expert,
            train.metadata.get("expert_reason", ""),
        )
        return data

    def build_model(self, data: LQRData) -> tuple[Any, TRCConfig]:
        """TinyRecursiveControl sized for the data's system, with its normalisation and system buffers set."""
        from mlcore_trc_control.models.trc import TinyRecursiveControl

        system = data.system
        model_cfg = attrs.evolve(
            self.config.model, state_dim=system.n, control_dim=system.m, num_steps=system.num_steps
        )
        model = TinyRecursiveControl(model_cfg)
        model.set_system(system)
        train = data.train_set()
        model.set_normalisation(train.problems, train.controls)
        return model, model_cfg

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Run every stage into ``ctx.out_dir``; returns the headline metrics."""
        from mlcore.losses import MSELoss
        from mlcore.training import Trainer
        from mlcore.training.checkpoint import make_meta
        from mlcore_trc_control.evaluation import TRCEvaluator

        cfg = self.config
        timings: dict[str, float] = {}
        start = time.perf_counter()
        data = self.prepare_data(ctx)
        timings["data_seconds"] = time.perf_counter() - start

        model, model_cfg = self.build_model(data)
        meta = make_meta(
            plugin=PLUGIN,
            components={
                "model": ("trc", model_cfg),
                "dataset": ("lqr", data.config),
                "evaluator": ("trc", cfg.evaluation),
                "loss": ("mse", None),
            },
            data=data,
            pipeline="trc",
            profile=ctx.profile,
            seed=ctx.seed,
        )
        trainer = Trainer(cfg.trainer, device=ctx.device, seed=ctx.seed, progress=ctx.progress)
        fit = trainer.fit(model, data, MSELoss(), run_dir=ctx.out_dir, meta=meta)
        timings["train_seconds"] = float(fit.train_seconds)

        start = time.perf_counter()
        evaluator = TRCEvaluator(cfg.evaluation)
        metrics = evaluator.evaluate(model, data, device=ctx.device, out_dir=ctx.out_dir)
        timings["evaluate_seconds"] = time.perf_counter() - start

        comparison: dict[str, Any] = {}
        if cfg.comparison.enabled:
            start = time.perf_counter()
            comparison = self.compare(ctx, model, data)
            timings["compare_seconds"] = time.perf_counter() - start

        export: dict[str, Any] = {"enabled": False}
        if cfg.export.enabled:
            start = time.perf_counter()
            export = self.export(ctx, model)
            timings["export_seconds"] = time.perf_counter() - start

        headline = {
            "success_rate": metrics["success_rate"],
            "mean_terminal_error": metrics["mean_terminal_error"],
            "error_gap": metrics["error_gap"],
            "cost_gap": metrics["cost_gap"],
            "cost_gap_lqr": metrics["cost_gap_lqr"],
            "lqr_cost": metrics["lqr_cost"],
            "control_mse": metrics["control_mse"],
            "inference_ms_batch1": metrics["inference_ms_batch1"],
            "inference_ms_batched": metrics["inference_ms_batched"],
            **{k: metrics[k] for k in ("inference_ms_batch1_torchscript",) if k in metrics},
            "num_parameters": metrics["num_parameters"],
            "train_seconds": timings["train_seconds"],
            "epochs_run": float(fit.epochs_run),
            "best_epoch": float(fit.best_epoch),
        }
        if "ok" in export:
            headline["export_ok"] = float(bool(export["ok"]))
            headline["export_max_abs_diff"] = float(export["max_abs_diff"])
        ctx.write_text("report.md", self.report(ctx, data, fit, metrics, comparison, export, timings))
        return headline

    def compare(self, ctx: RunContext, model: Any, data: LQRData) -> dict[str, Any]:
        """Baselines, cycle sweep and generalisation suite; writes ``comparison_results.json`` and plots."""
        from mlcore_trc_control.comparison import (
            baseline_table,
            cycle_sweep,
            generalisation_suite,
            plot_baselines,
            plot_cycle_sweep,
        )

        cfg = self.config
        threshold = cfg.evaluation.success_threshold
        split = data.eval_set()
        problems = split.problem_set
        result: dict[str, Any] = {
            "baselines": baseline_table(
                model, problems, device=ctx.device, threshold=threshold, seed=cfg.evaluation.random_seed
            ),
            "cycle_sweep": cycle_sweep(
                model, problems, cfg.comparison.sweep_cycles, device=ctx.device, threshold=threshold
            ),
        }
        if cfg.comparison.generalisation:
            result["generalisation"] = generalisation_suite(
                model,
                data.config,
                problems.expert,
                num_samples=cfg.comparison.generalisation_samples,
                seed=cfg.comparison.seed,
                device=ctx.device,
                threshold=threshold,
            )
        plot_baselines(result["baselines"], ctx.plots_dir / "comparison.png")
        plot_cycle_sweep(result["cycle_sweep"], ctx.plots_dir / "cycle_sweep.png")
        ctx.write_json("comparison_results.json", result)
        return result

    def export(self, ctx: RunContext, model: Any) -> dict[str, Any]:
        """Export with the outputs-match check; a missing exporter is recorded, not fatal."""
        from mlcore.export import export_model

        cfg = self.config.export
        suffix = ".onnx" if cfg.format == "onnx" else ".ts"
        try:
            result = export_model(
                model,
                model.example_input(2),
                ctx.path(f"model{suffix}"),
                format=cfg.format,
                atol=cfg.atol,
                rtol=cfg.atol,
            )
        except MlcoreError as exc:
            log.warning("export skipped: %s", exc)
            return {"enabled": True, "skipped": str(exc)}
        out = result.to_dict() if hasattr(result, "to_dict") else attrs.asdict(result)
        out["summary"] = result.summary()
        if cfg.format == "onnx" and result.ok:
            out.update(_onnx_timing(result.path, model))
        ctx.write_json("export.json", out)
        return out

    # ------------------------------------------------------------------ report
    def report(
        self,
        ctx: RunContext,
        data: LQRData,
        fit: Any,
        metrics: dict[str, float],
        comparison: dict[str, Any],
        export: dict[str, Any],
        timings: dict[str, float],
    ) -> str:
        """The Markdown summary of the run."""
        from mlcore_trc_control.comparison import markdown_table

        train = data.train_problems()
        system = data.system
        lines = [
            f"# trc-control run ({ctx.profile} profile)",
            "",
            f"System **{system.name}** (n={system.n}, m={system.m}, N={system.num_steps}, dt={system.dt:.4g} s, "
            f"|u| <= {system.control_limit:g}); {len(train)} training problems, "
            f"{metrics['num_problems']:.0f} test problems.",
            f"Expert: **{train.expert}** — {train.metadata.get('expert_reason', '')}. "
            f"The exact LQR optimum needed the box constraint in "
            f"{100 * train.metadata.get('lqr_summary', {}).get('control_limit_bind_fraction', 0.0):.1f}% "
            "of the training problems.",
            "",
            f"Model: TinyRecursiveControl `{self.config.model.size}`, {metrics['num_parameters']:.0f} parameters; "
            f"{fit.epochs_run} epochs ({fit.stopped_reason}), best epoch {fit.best_epoch}, "
            f"training {timings['train_seconds']:.0f} s on {ctx.device}.",
            "",
            "## Evaluation",
            "",
            markdown_table(
                [metrics],
                [
                    ("success_rate", "success rate"),
                    ("mean_terminal_error", "mean terminal error"),
                    ("error_gap", "error gap vs LQR"),
                    ("cost_gap", "cost gap vs oracle"),
                    ("cost_gap_lqr", "cost gap vs LQR"),
                    ("control_mse", "control MSE"),
                    ("inference_ms_batch1", "ms/problem (batch 1)"),
                    ("inference_ms_batch1_torchscript", "ms/problem (batch 1, TorchScript)"),
                    ("inference_ms_batched", "ms/problem (batched)"),
                ],
            ),
            "",
            "error gap = (err_model - err_LQR) / err_LQR with LQR = the exact optimum of the stated cost; "
            "cost gap vs oracle = cost_model / cost_expert - 1.",
            "",
            "![training curves](training_curves.png)",
        ]
        if comparison:
            lines += [
                "",
                "## Random vs TRC vs LQR",
                "",
                markdown_table(
                    comparison["baselines"],
                    [
                        ("method", "method"),
                        ("mean_terminal_error", "mean terminal error"),
                        ("success_rate", "success rate"),
                        ("mean_cost", "mean cost J"),
                        ("cost_gap_vs_oracle", "cost gap vs oracle"),
                    ],
                ),
                "",
                "![comparison](plots/comparison.png)",
                "",
                "## Outer cycles at test time",
                "",
                markdown_table(
                    comparison["cycle_sweep"],
                    [
                        ("outer_cycles", "outer cycles"),
                        ("mean_terminal_error", "mean terminal error"),
                        ("success_rate", "success rate"),
                        ("control_mse", "control MSE"),
                        ("cost_gap", "cost gap"),
                    ],
                ),
                "",
                f"The model was trained with {comparison['cycle_sweep'][0]['trained_with']} outer cycles.",
                "",
                "![cycle sweep](plots/cycle_sweep.png)",
            ]
            if "generalisation" in comparison:
                lines += [
                    "",
                    "## Generalisation",
                    "",
                    markdown_table(
                        comparison["generalisation"],
                        [
                            ("scenario", "scenario"),
                            ("mean_terminal_error", "mean terminal error"),
                            ("success_rate", "success rate"),
                            ("cost_gap", "cost gap vs oracle"),
                            ("oracle_success_rate", "oracle success"),
                            ("limit_violation_rate", "exceeds |u| limit"),
                            ("skipped", "skipped"),
                        ],
                    ),
                ]
        lines += ["", "## Export", ""]
        if "summary" in export:
            lines.append(export["summary"])
            if "onnx_ms_batch1" in export:
                lines.append(f"\nONNX Runtime: {export['onnx_ms_batch1']:.3f} ms per problem at batch 1.")
        elif "skipped" in export:
            lines.append(f"skipped: {export['skipped']}")
        else:
            lines.append("disabled")
        return "\n".join(lines) + "\n"


def _onnx_timing(path: Path, model: Any, repeats: int = 200) -> dict[str, float]:
    """Median ONNX Runtime latency per problem at batch 1 (single thread)."""
    import statistics

    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = model.example_input(1).cpu().numpy()
    for _ in range(10):
        session.run(None, {name: x})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    return {"onnx_ms_batch1": 1000.0 * statistics.median(times)}
