"""The ``trc`` pipeline, a recipe: generate -> train -> evaluate -> compare -> export -> report.

``mlcore run --plugin trc-control`` runs it (profile ``quick`` by default in the README demo,
``full`` = 10K samples, 100 epochs, medium model). Override any field with ``--set``, e.g.
``--set model.size=medium --set trainer.epochs=5 --set dataset.system=planar_double_integrator``.
The core (:class:`mlcore.pipelines.RecipePipeline`) builds, checks, trains, evaluates, exports
and writes the report; this module adds the LQR specifics through the recipe's hooks.

Run directory::

    data/lqr_train/lqr_dataset.npz, data/lqr_test/lqr_dataset.npz   the generated data sets
    checkpoints/best.pt, last.pt        (meta names model/dataset/evaluator: `mlcore evaluate` needs nothing else)
    training_stats.json, training_curves.png, tensorboard/
    metrics.json, evaluation_results.json                            the evaluator's figures
    comparison_results.json                                          baselines, cycle sweep, halting, generalisation
    closed_loop_results.json, closed_loop/{trc,mlp}_dagger.pt        closed_loop.enabled: open vs closed loop
    closed_loop/{trc,mlp}_finetuned.pt                               closed_loop.finetune_steps > 0
    model.onnx, export.json                                          verified against the eager model
    report.md, plots/comparison.png, plots/cycle_sweep.png
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import numpy as np

from mlcore.errors import ConfigError
from mlcore.pipelines import ExportConfig, Parts, Recipe, RecipePipeline, RunContext, link_dimensions
from mlcore.training import TrainerConfig
from mlcore_trc_control.comparison import ComparisonConfig
from mlcore_trc_control.data import DATA_FILE, LQRData, LQRDataConfig
from mlcore_trc_control.deployment import ClosedLoopConfig
from mlcore_trc_control.evaluation import TRCEvaluatorConfig
from mlcore_trc_control.models.config import TRCConfig
from mlcore_trc_control.nonlinear.systems import is_nonlinear

if TYPE_CHECKING:
    from torch import nn

    from mlcore.data import DataModule
    from mlcore_trc_control.models.trc import TinyRecursiveControl

log = logging.getLogger(__name__)

__all__ = ["ExportConfig", "TRCPipeline", "TRCPipelineConfig"]


def _default_trainer() -> TrainerConfig:
    return TrainerConfig(epochs=100, batch_size=64, lr=1e-3, scheduler="cosine", monitor="val_final_mse", callbacks=[])


@attrs.define
class TRCPipelineConfig:
    """Config of the ``trc`` pipeline: one table per part or stage.

    Attributes:
        dataset: the ``lqr`` data set (:class:`~mlcore_trc_control.data.LQRDataConfig`); ``[data]``
            is still read.
        model: TinyRecursiveControl (:class:`~mlcore_trc_control.models.config.TRCConfig`);
            ``state_dim``/``control_dim``/``num_steps`` are set from the dataset's system.
        trainer: :class:`mlcore.training.TrainerConfig` (batch 64, lr 1e-3, cosine, 100 epochs,
            best checkpoint by the validation MSE of the final cycle, no gradient-histogram callback).
        evaluator: the ``trc`` evaluator; ``[evaluation]`` is still read.
        comparison: baselines, cycle sweep, adaptive halting and generalisation suite.
        closed_loop: every policy open- and closed-loop (re-planning) on the same test problems,
            optionally after DAgger (:class:`~mlcore_trc_control.deployment.ClosedLoopConfig`);
            needs ``comparison.enabled`` (it reuses the comparison's baselines).
        export: ONNX/TorchScript export with an outputs-match check (:class:`mlcore.pipelines.ExportConfig`).
        save_data: write the generated data sets into ``<run>/data/`` (the checkpoint then
            points at them) instead of keeping them in memory only.
    """

    dataset: LQRDataConfig = attrs.field(factory=LQRDataConfig, metadata={"mlcore_old_names": ("data",)})
    model: TRCConfig = attrs.field(factory=TRCConfig)
    trainer: TrainerConfig = attrs.field(factory=_default_trainer)
    evaluator: TRCEvaluatorConfig = attrs.field(
        factory=TRCEvaluatorConfig, metadata={"mlcore_old_names": ("evaluation",)}
    )
    comparison: ComparisonConfig = attrs.field(factory=ComparisonConfig)
    closed_loop: ClosedLoopConfig = attrs.field(factory=ClosedLoopConfig)
    export: ExportConfig = attrs.field(factory=ExportConfig)
    save_data: bool = True


class TRCPipeline(RecipePipeline[TRCPipelineConfig]):
    """The ``lqr`` / ``trc`` / ``mse`` / ``trc`` recipe with the LQR-specific stages as hooks."""

    recipe = Recipe(dataset="lqr", model="trc", loss="mse", evaluator="trc", title="trc-control run")

    def __init__(self, config: TRCPipelineConfig | None = None) -> None:
        super().__init__(config or TRCPipelineConfig())
        self.comparison: dict[str, Any] = {}
        self.closed_loop: dict[str, Any] = {}

    def link(self, config: TRCPipelineConfig, data: DataModule) -> TRCPipelineConfig:
        """The model's problem shape (``state_dim``, ``control_dim``, ``num_steps``) from the system."""
        system = _lqr(data).system
        dims = {"state_dim": system.n, "control_dim": system.m, "num_steps": system.num_steps}
        model = link_dimensions(config.model, dims)
        bounds = config.dataset.horizons_bounds()
        if not is_nonlinear(system) and bounds is not None:
            # per-problem horizons: the rollout losses' linear buffers hold one discretisation
            if model.rollout_weight > 0 or model.cost_weight > 0:
                raise ConfigError(
                    "model.rollout_weight/model.cost_weight use one fixed discretisation of a linear system: "
                    "set them to 0 with dataset.horizon_range"
                )
            # (a custom system without a continuous model was refused when the data built the system)
            # the terminal projection computes each problem's maps from its own horizon
            model = attrs.evolve(model, projection_horizons=[*bounds])
        if is_nonlinear(system):
            if model.terminal_projection:
                log.info("model.terminal_projection is for linear systems: off for %s (output_bound on)", system.name)
            model = attrs.evolve(model, terminal_projection=False, output_bound=True)
        return attrs.evolve(config, model=model)

    def prepare_model(self, model: nn.Module, data: DataModule) -> None:
        """The rollout buffers from the system, the normalisation from the training split."""
        lqr = _lqr(data)
        train = lqr.train_problems()
        log.info(
            "data: %d training problems of %s, expert=%s (%s)",
            len(train),
            lqr.system.name,
            train.expert,
            train.metadata.get("expert_reason", ""),
        )
        trc = cast("TinyRecursiveControl", model)
        trc.set_system(lqr.system)
        split = lqr.train_set()
        trc.set_normalisation(split.problems, split.controls)

    def save_data(self, ctx: RunContext, config: TRCPipelineConfig, data: DataModule) -> TRCPipelineConfig:
        """Write the problem sets already generated into ``<run>/data/lqr_{train,test}`` (kept on resume)."""
        cfg = config.dataset
        if not config.save_data or cfg.path is not None:
            return config
        lqr = _lqr(data)
        cfg = attrs.evolve(cfg, path=str(_keep(lqr.train_problems(), ctx.out_dir / "data" / "lqr_train")))
        test = lqr.test_problems() if cfg.test_path is None else None
        if test is not None:
            cfg = attrs.evolve(cfg, test_path=str(_keep(test, ctx.out_dir / "data" / "lqr_test")))
        return attrs.evolve(config, dataset=cfg)

    def extra_metrics(self, ctx: RunContext, parts: Parts[TRCPipelineConfig]) -> dict[str, float]:
        """Baselines, cycle sweep and generalisation (``comparison_results.json``), ONNX Runtime latency."""
        out: dict[str, float] = {}
        policies: dict[str, Any] = {}
        if parts.config.comparison.enabled:
            start = time.perf_counter()
            self.comparison = compare(ctx, parts.config, parts.model, _lqr(parts.data), policies)
            out["compare_seconds"] = time.perf_counter() - start
        if parts.config.closed_loop.enabled:
            start = time.perf_counter()
            self.closed_loop = closed_loop_stage(ctx, parts.config, parts.model, _lqr(parts.data), policies)
            out["closed_loop_seconds"] = time.perf_counter() - start
            out.update(self.closed_loop["metrics"])
        if parts.export is not None and parts.export.format == "onnx" and parts.export.ok:
            out.update(_onnx_timing(parts.export.path, parts.model))
            record = json.loads((ctx.out_dir / "export.json").read_text(encoding="utf-8"))
            ctx.write_json("export.json", {**record, **out})
        return out

    def report_sections(
        self, ctx: RunContext, parts: Parts[TRCPipelineConfig], metrics: dict[str, float]
    ) -> list[tuple[str, str]]:
        """Problem and expert, evaluation highlights, comparison tables, export."""
        return report_sections(parts, metrics, self.comparison, self.closed_loop)


def _lqr(data: DataModule) -> LQRData:
    if not isinstance(data, LQRData):
        raise TypeError(f"the trc pipeline needs the lqr dataset, got {type(data).__name__}")
    return data


def _keep(problems: Any, directory: Path) -> Path:
    """``directory/lqr_dataset.npz``, written from ``problems`` unless a resumed run already has it."""
    path = directory / DATA_FILE
    if not path.exists():
        problems.save(path)
    return path.resolve()


def compare(
    ctx: RunContext, cfg: TRCPipelineConfig, model: Any, data: LQRData, policies: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Baselines, cycle sweep, adaptive halting and generalisation suite; writes
    ``comparison_results.json`` and plots. ``policies`` (if given) receives the learned baselines
    by name (``linear``, ``mlp``) for the closed-loop stage."""
    from mlcore_trc_control.comparison import (
        baseline_table,
        cycle_sweep,
        generalisation_suite,
        halting_sweep,
        plot_baselines,
        plot_cycle_sweep,
    )

    threshold = cfg.evaluator.success_threshold
    problems = data.eval_set().problem_set  # type: ignore[attr-defined]
    warm_starts: dict[str, np.ndarray] = {}
    extra = learned_baselines(ctx, cfg, model, data, problems, policies, warm_starts)
    result: dict[str, Any] = {
        "baselines": baseline_table(
            model,
            problems,
            device=ctx.device,
            threshold=threshold,
            seed=cfg.evaluator.random_seed,
            extra=extra,
        ),
        "cycle_sweep": cycle_sweep(
            model, problems, cfg.comparison.sweep_cycles, device=ctx.device, threshold=threshold
        ),
    }
    if cfg.comparison.halting_tolerances and callable(getattr(model, "predict_adaptive", None)):
        result["halting"] = halting_sweep(
            model, problems, cfg.comparison.halting_tolerances, device=ctx.device, threshold=threshold
        )
    if cfg.comparison.refine_iterations and is_nonlinear(data.system):
        result["refinement"] = refinement(ctx, cfg, model, problems, warm_starts)
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


def refinement(
    ctx: RunContext,
    cfg: TRCPipelineConfig,
    model: Any,
    problems: Any,
    learned: Mapping[str, np.ndarray],
) -> list[dict[str, Any]]:
    """iLQR from TRC's, the learned baselines', zero and the LQR's plans with each budget of
    ``comparison.refine_iterations`` (:func:`~mlcore_trc_control.refinement.refinement_table`);
    plots ``plots/refinement.png``. ``learned`` holds the baselines' plans by warm-start name, as
    :func:`learned_baselines` hands them out (``warm_starts``)."""
    from mlcore_trc_control.evaluation import predict_controls
    from mlcore_trc_control.refinement import LQR_WARM_START, plot_refinement, refinement_table

    starts: dict[str, np.ndarray | None] = {"TRC": predict_controls(model, problems.problems(), device=ctx.device)}
    starts.update(learned)  # the clipped linear policy and the MLP
    starts["zeros"] = np.zeros_like(problems.control_sequences)
    starts[LQR_WARM_START] = None
    start = time.perf_counter()
    rows = refinement_table(
        problems, starts, cfg.comparison.refine_iterations, threshold=cfg.evaluator.success_threshold
    )
    log.info("iLQR warm-start table in %.1fs", time.perf_counter() - start)
    plot_refinement(rows, ctx.plots_dir / "refinement.png")
    return rows


def learned_baselines(
    ctx: RunContext,
    cfg: TRCPipelineConfig,
    model: Any,
    data: LQRData,
    problems: Any,
    policies: dict[str, Any] | None = None,
    warm_starts: dict[str, np.ndarray] | None = None,
) -> list[tuple[str, Any, int]]:
    """The least-squares linear policy and the same-size MLP (same data, epochs, batch, lr) on
    ``problems``; ``policies`` (if given) receives them as ``linear`` and ``mlp``, and
    ``warm_starts`` (if given) the plans :func:`refinement` starts iLQR from, by warm-start name:
    the clipped linear policy's as ``linear, clipped to the box`` and the MLP's as ``MLP``."""
    from mlcore_trc_control.comparison import fit_linear_policy, train_mlp_baseline
    from mlcore_trc_control.evaluation import predict_controls

    train = data.train_set().problem_set
    val_split = data.val_set()
    out: list[tuple[str, Any, int]] = []
    if cfg.comparison.linear_baseline:
        linear = fit_linear_policy(train)
        if policies is not None:
            policies["linear"] = linear
        controls = linear(problems.problems())
        out.append(("linear (least squares)", controls, linear.num_parameters))
        limit = data.system.control_limit
        if limit > 0:
            clipped = np.clip(controls, -limit, limit)
            out.append(("linear, clipped to the box", clipped, linear.num_parameters))
            if warm_starts is not None:
                warm_starts["linear, clipped to the box"] = clipped
            if cfg.model.terminal_projection:
                projected = project_controls(
                    data.system,
                    problems.problems(),
                    controls,
                    cfg.model.projection_iterations,
                    cfg.model.projection_horizons,
                )
                out.append(("linear + terminal projection", projected, linear.num_parameters))
    if cfg.comparison.mlp_baseline:
        start = time.perf_counter()
        budget = sum(p.numel() for p in model.parameters() if p.requires_grad)
        mlp = train_mlp_baseline(
            train,
            val_split.problem_set if val_split is not None else None,
            budget,
            epochs=cfg.trainer.epochs,
            batch_size=cfg.trainer.batch_size,
            lr=cfg.trainer.lr,
            seed=cfg.comparison.seed,
            device=ctx.device,
            projection=cfg.model.terminal_projection,
            projection_horizons=cfg.model.projection_horizons,
        )
        log.info("MLP baseline trained in %.1fs", time.perf_counter() - start)
        if policies is not None:
            policies["mlp"] = mlp
        params = sum(p.numel() for p in mlp.parameters())
        how = ", terminal projection" if cfg.model.terminal_projection else ""
        mlp_controls = predict_controls(mlp, problems.problems(), device=ctx.device)
        limit = data.system.control_limit
        if is_nonlinear(data.system) and limit > 0:
            how, mlp_controls = ", clipped to the box", np.clip(mlp_controls, -limit, limit)
        out.append((f"MLP (2 hidden layers{how}, {params} parameters)", mlp_controls, params))
        if warm_starts is not None:
            warm_starts["MLP"] = mlp_controls
    return out


def closed_loop_stage(
    ctx: RunContext, cfg: TRCPipelineConfig, model: Any, data: LQRData, policies: dict[str, Any]
) -> dict[str, Any]:
    """TRC, the linear policy, the MLP (and their DAgger copies) and the expert, open- and
    closed-loop on the first ``closed_loop.problems`` test problems; writes ``closed_loop_results.json``."""
    from mlcore_trc_control.closed_loop import policy_planner
    from mlcore_trc_control.deployment import closed_loop_table, run_dagger, run_finetune

    cl = cfg.closed_loop
    test = data.eval_set().problem_set  # type: ignore[attr-defined]
    problems = test.subset(np.arange(min(cl.problems, len(test))))
    system = data.system
    limit = float(system.control_limit) if is_nonlinear(system) else 0.0
    entries: dict[str, Any] = {"TRC": (policy_planner(model, device=ctx.device), None)}
    if "linear" in policies:
        name = "linear, clipped to the box" if limit > 0 else "linear (least squares)"
        entries[name] = (policy_planner(policies["linear"], clip_to=limit), None)
    if "mlp" in policies:
        entries["MLP" + (", clipped to the box" if limit > 0 else "")] = (
            policy_planner(policies["mlp"], clip_to=limit, device=ctx.device),
            None,
        )
    histories: dict[str, Any] = {}
    finetune_histories: dict[str, Any] = {}
    learners = {"TRC": model, **({"MLP": policies["mlp"]} if "mlp" in policies else {})}
    nets: dict[str, Any] = dict(learners)  # every learned policy's row, for plan selection (closed_loop.select_cycles)
    if "linear" in policies:
        nets["linear"] = policies["linear"]
    margin = 0.5 * cfg.evaluator.success_threshold

    from mlcore_trc_control.selection import selecting_planner

    def selection_for(net: Any) -> Any:
        return selecting_planner(
            system,
            net,
            cycles=cl.select_cycles,
            margin=margin,
            clip_to=limit,
            device=ctx.device,
            jitter=cl.select_jitter,
            with_lqr=cl.select_with_lqr,
            polish_iterations=cl.select_polish_iterations,
            catch=cl.select_catch if is_nonlinear(system) else 0.0,
        )

    if cl.dagger_rounds > 0 and is_nonlinear(system):
        learners, histories = run_dagger(
            learners,
            data.train_set().problem_set,
            cl,
            ctx.out_dir / "closed_loop",
            clip_to=limit,
            device=ctx.device,
            planner_for=selection_for if cl.dagger_with_selection else None,
        )
        rounds = f"{cl.dagger_rounds} rounds" + (", selection in the loop" if cl.dagger_with_selection else "")
        for name, net in learners.items():
            entries[f"{name} + DAgger ({rounds})"] = (
                policy_planner(net, clip_to=limit if name != "TRC" else 0.0, device=ctx.device),
                None,
            )
            nets[f"{name} + DAgger ({rounds})"] = net
    if cl.finetune_steps > 0 and is_nonlinear(system):
        # from the DAgger-tuned copies when DAgger ran; the training split (its tail held out to pick the iterate)
        tuned, finetune_histories = run_finetune(
            learners, data.train_set().problem_set, cl, ctx.out_dir / "closed_loop", clip_to=limit, device=ctx.device
        )
        after = f" + DAgger ({rounds})" if cl.dagger_rounds > 0 else ""
        for name, net in tuned.items():
            entries[f"{name}{after} + closed-loop fine-tuning ({cl.finetune_steps} steps)"] = (
                policy_planner(net, clip_to=limit if name != "TRC" else 0.0, device=ctx.device),
                None,
            )
            nets[f"{name}{after} + closed-loop fine-tuning ({cl.finetune_steps} steps)"] = net
    if cl.select_cycles > 0:
        polish = f" + {cl.select_polish_iterations} iLQR iterations" if cl.select_polish_iterations else ""
        if cl.select_catch > 0 and is_nonlinear(system):
            polish = f", LQR catch within {cl.select_catch:g}{polish}"
        for name, net in nets.items():
            what = f"{cl.select_cycles} cycles" if hasattr(net, "forward_cycles") else "its one plan"
            if cl.select_jitter:
                what += ", jittered states"
            if cl.select_with_lqr and is_nonlinear(system):
                what += " + LQR"
            entries[f"{name} + plan selection ({what}){polish}"] = (selection_for(net), None)
        if is_nonlinear(system):  # the classical candidate alone, for comparison
            planner = selecting_planner(
                system,
                None,
                cycles=0,
                margin=margin,
                with_lqr=True,
                polish_iterations=cl.select_polish_iterations,
                catch=cl.select_catch,
            )
            entries[f"LQR on the linearisation + plan selection (its one plan){polish}"] = (planner, None)
    rows = closed_loop_table(problems, entries, cl, threshold=cfg.evaluator.success_threshold)
    metrics: dict[str, float] = {}
    for row in rows:
        if row["method"] == "TRC" and row["control_noise"] == cl.noise_levels[0]:
            metrics[f"{row['loop']}_loop_success_rate"] = row["success_rate"]
            metrics[f"{row['loop']}_loop_cost_gap"] = row["cost_gap"]
        if row["control_noise"] != cl.noise_levels[0] or not row["method"].startswith("TRC +"):
            continue
        # the selection rows come last, the most-tuned network's last of all
        key = (
            "select"
            if "plan selection" in row["method"]
            else ("finetune" if "fine-tuning" in row["method"] else "dagger")
        )
        metrics[f"{key}_{row['loop']}_loop_success_rate"] = row["success_rate"]
        metrics[f"{key}_{row['loop']}_loop_cost_gap"] = row["cost_gap"]
    result = {
        "rows": rows,
        "dagger": histories,
        "finetune": finetune_histories,
        "metrics": metrics,
        "num_problems": len(problems),
        "config": attrs.asdict(cl),
        "definitions": {
            "open": "the plan from x_0 applied without feedback",
            "closed": f"re-planned from the measured state every {cl.replan_every} step(s), {cl.horizon} horizon",
            "cost_gap": "mean J of the executed trajectory / mean J of the expert's open-loop optimum - 1",
            "plan selection": "at every re-plan, the candidate plans (TRC: its answers after outer cycles "
            f"1..{cl.select_cycles}; other policies: their one plan) and the kept tail of the previous plan are "
            "simulated to the end; the best is committed (landing within half the success threshold, then lowest J)",
        },
    }
    ctx.write_json("closed_loop_results.json", result)
    return result


def project_controls(
    system: Any, problems: np.ndarray, controls: np.ndarray, iterations: int, horizons: Any = None
) -> np.ndarray:
    """``controls`` passed through TRC's :class:`TerminalProjection` for ``system`` (float64;
    horizon-aware over ``horizons = [T_min, T_max]`` when given)."""
    import torch

    from mlcore_trc_control.models.projection import TerminalProjection

    proj = TerminalProjection(system.n, system.m, system.num_steps, iterations, horizons).double()
    proj.set_system(system)
    with torch.no_grad():
        out = proj(torch.as_tensor(problems, dtype=torch.float64), torch.as_tensor(controls, dtype=torch.float64))
    return out.numpy()


def report_sections(
    parts: Parts[TRCPipelineConfig],
    metrics: dict[str, float],
    comparison: dict[str, Any],
    closed_loop: dict[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """The trc-specific sections of ``report.md``."""
    from mlcore_trc_control.comparison import markdown_table

    data = _lqr(parts.data)
    train, system = data.train_problems(), data.system
    bind = 100 * train.metadata.get("lqr_summary", {}).get("control_limit_bind_fraction", 0.0)
    sections = [
        (
            "Problem",
            f"System **{system.name}** (n={system.n}, m={system.m}, N={system.num_steps}, dt={system.dt:.4g} s, "
            f"|u| <= {system.control_limit:g}); {len(train)} training problems, "
            f"{metrics['num_problems']:.0f} test problems.\n"
            f"Expert: **{train.expert}** — {train.metadata.get('expert_reason', '')}. The exact LQR optimum needed "
            f"the box constraint in {bind:.1f}% of the training problems.\n\n"
            f"Model: TinyRecursiveControl `{parts.config.model.size}`, {metrics['num_parameters']:.0f} parameters.",
        ),
        (
            "Evaluation",
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
            )
            + "\n\nerror gap = (err_model - err_LQR) / err_LQR with LQR = the exact optimum of the stated cost; "
            "cost gap vs oracle = cost_model / cost_expert - 1.",
        ),
    ]
    if comparison:
        baselines = [
            ("method", "method"),
            ("parameters", "parameters"),
            ("mean_terminal_error", "mean terminal error"),
            ("success_rate", "success rate"),
            ("mean_cost", "mean cost J"),
            ("cost_gap_vs_oracle", "cost gap vs oracle"),
            ("limit_violation_rate", "exceeds |u| limit"),
        ]
        sweep = [
            ("outer_cycles", "outer cycles"),
            ("mean_terminal_error", "mean terminal error"),
            ("success_rate", "success rate"),
            ("control_mse", "control MSE"),
            ("cost_gap", "cost gap"),
        ]
        trained_with = comparison["cycle_sweep"][0]["trained_with"]
        sections += [
            (
                "Random vs TRC vs linear vs MLP vs LQR vs oracle",
                markdown_table(comparison["baselines"], baselines)
                + f"\n\ncost gap vs oracle = mean cost / mean cost of the {train.expert} expert - 1.",
            ),
            (
                "Outer cycles at test time",
                markdown_table(comparison["cycle_sweep"], sweep)
                + f"\n\nThe model was trained with {trained_with} outer cycles.",
            ),
        ]
        if "halting" in comparison:
            halting = [
                ("tolerance", "halting tolerance"),
                ("mean_cycles", "mean cycles used"),
                ("max_cycles_used", "max cycles used"),
                ("success_rate", "success rate"),
                ("control_mse", "control MSE"),
                ("cost_gap", "cost gap"),
            ]
            sections.append(
                (
                    "Adaptive halting",
                    markdown_table(comparison["halting"], halting)
                    + "\n\nA problem stops refining once its controls change by less than the tolerance "
                    "(RMS, in control-scale units) from one outer cycle to the next.",
                )
            )
        if "refinement" in comparison:
            refine = [
                ("warm_start", "iLQR warm start"),
                ("iterations", "iterations"),
                ("success_rate", "success rate"),
                ("median_terminal_error", "median terminal error"),
                ("cost_gap", "cost gap vs expert"),
                ("ms_per_problem", "iLQR ms / problem"),
            ]
            sections.append(
                (
                    "Learned plans as iLQR warm starts",
                    markdown_table(comparison["refinement"], refine)
                    + "\n\niLQR (same RK4 dynamics and stated cost) run for a budget of iterations from each "
                    "policy's open-loop plan; 0 iterations = the plan itself. Plot: plots/refinement.png.",
                )
            )
        if "generalisation" in comparison:
            columns = [
                ("scenario", "scenario"),
                ("mean_terminal_error", "mean terminal error"),
                ("success_rate", "success rate"),
                ("cost_gap", "cost gap vs oracle"),
                ("oracle_success_rate", "oracle success"),
                ("limit_violation_rate", "exceeds |u| limit"),
                ("skipped", "skipped"),
            ]
            sections.append(("Generalisation", markdown_table(comparison["generalisation"], columns)))
    if closed_loop:
        columns = [
            ("method", "method"),
            ("loop", "loop"),
            ("control_noise", "actuation noise"),
            ("success_rate", "success rate"),
            ("mean_terminal_error", "mean terminal error"),
            ("cost_gap", "cost gap vs expert"),
        ]
        sections.append(
            (
                "Open vs closed loop",
                markdown_table(closed_loop["rows"], columns)
                + f"\n\n{closed_loop['num_problems']} test problems; closed = "
                + closed_loop["definitions"]["closed"]
                + ".",
            )
        )
    if parts.export is not None:
        export = parts.export.summary()
        if "onnx_ms_batch1" in metrics:
            export += f"\n\nONNX Runtime: {metrics['onnx_ms_batch1']:.3f} ms per problem at batch 1."
    else:
        export = "disabled" if not parts.config.export.enabled else "skipped (see run.log)"
    sections.append(("Export", export))
    return sections


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
