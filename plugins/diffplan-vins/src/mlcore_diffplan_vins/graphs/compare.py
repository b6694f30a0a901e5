"""The ``graph`` pipeline: every graph planner and the baselines on identical data.

One data set is generated (or read) once; every planner is trained on it with the same trainer
and seed, then rolled out from every reachable start node of the test graphs. The greedy
baseline (step to the free neighbour nearest the goal) and the optimal planner (the Dijkstra
labels, 100 % by construction) sit beside them. Writes ``results.json``, ``plots/`` and a
``report.md`` that reads like a results section.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from mlcore.config import in_range
from mlcore.errors import ConfigError, RunInterrupted
from mlcore.pipelines import Pipeline
from mlcore.pipelines.sections import ComponentConfig, component_field
from mlcore.runs import RunContext
from mlcore.training.config import TrainerConfig
from mlcore_diffplan_vins.graphs.config import GraphActionLossConfig, GraphRolloutConfig
from mlcore_diffplan_vins.graphs.pipeline import link_graph_config, resolve_graph_model
from mlcore_diffplan_vins.graphs.specs import GRAPH_MODELS
from mlcore_diffplan_vins.pipeline import apply_settings, research_trainer

log = logging.getLogger(__name__)

__all__ = ["GraphComparison", "GraphComparisonConfig", "GraphPlannerSettings"]

PLUGIN = "diffplan-vins"


@attrs.define
class GraphPlannerSettings:
    """Hyperparameters applied to every graph planner (``None`` = the model's default).

    Attributes:
        k: value-iteration steps K.
        hidden_channels: width of the encoders and edge networks.
        q_channels: Q channels.
    """

    k: int | None = attrs.field(default=None, validator=in_range(1, 1000))
    hidden_channels: int | None = attrs.field(default=None, validator=in_range(1, 4096))
    q_channels: int | None = attrs.field(default=None, validator=in_range(1, 4096))

    def apply(self, config: Any, where: str) -> Any:
        """``config`` with every set field replaced (validated by the model config)."""
        return apply_settings(self, config, where)


@attrs.define
class GraphComparisonConfig:
    """Config of the ``graph`` pipeline.

    Attributes:
        notes: free text recorded in the report.
        models: graph planners to train (registered names or published spellings).
        planner: hyperparameters shared by all of them.
        model_overrides: per-model fields applied after ``planner``, e.g. ``[model_overrides.gat-vin] heads = 4``.
        dataset: ``name = "maze-graphs"`` (default) or ``"geometric-graphs"`` and its fields.
        loss, trainer, evaluator: one table each; every model gets the same data and trainer.
        plot_graphs: test graphs drawn in ``plots/`` with each model's path and values.
    """

    notes: str = ""
    models: list[str] = attrs.field(factory=lambda: [n for n, *_ in GRAPH_MODELS])
    planner: GraphPlannerSettings = attrs.field(factory=GraphPlannerSettings)
    model_overrides: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    dataset: ComponentConfig = component_field("dataset", "maze-graphs")
    loss: GraphActionLossConfig = attrs.field(factory=GraphActionLossConfig)
    trainer: TrainerConfig = attrs.field(factory=research_trainer)
    evaluator: GraphRolloutConfig = attrs.field(factory=GraphRolloutConfig)
    plot_graphs: int = attrs.field(default=1, validator=in_range(0, 20))


class GraphComparison(Pipeline):
    """Train the graph planners on the same graphs and compare them (see the module docstring)."""

    config: GraphComparisonConfig

    def __init__(self, config: GraphComparisonConfig | None = None) -> None:
        super().__init__(config or GraphComparisonConfig())
        self._data: Any = None

    def data(self) -> Any:
        """The prepared graph data module (built once)."""
        if self._data is None:
            from mlcore.registry import get_registry

            ds = self.config.dataset
            self._data = get_registry().get("dataset", ds.name).build(ds.config).prepare()
        return self._data

    def model_configs(self) -> dict[str, Any]:
        """``{name: model config}`` of every planner, with the shared settings and the data's dimensions."""
        from mlcore.registry import get_registry

        if not self.config.models:
            raise ConfigError("models is empty: name at least one graph planner (see `mlcore list model`)")
        reg = get_registry()
        data = self.data()
        out: dict[str, Any] = {}
        for raw in self.config.models:
            name = resolve_graph_model(raw)
            if name in out:
                raise ConfigError(f"models: {name!r} is listed twice")
            cls = reg.get("model", name).config_class()
            assert cls is not None
            cfg = self.config.planner.apply(cls(), f"planner (for model {name!r})")
            fields = attrs.fields_dict(cls)
            for key, value in self.config.model_overrides.get(name, self.config.model_overrides.get(raw, {})).items():
                if key not in fields:
                    raise ConfigError(
                        f"model_overrides.{name}.{key}: {name!r} has no such field (fields: {', '.join(fields)})"
                    )
                try:
                    cfg = attrs.evolve(cfg, **{key: value})
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"model_overrides.{name}: {exc}") from None
            out[name] = link_graph_config(name, cfg, data, where=f"models ({name})")
        for key in self.config.model_overrides:
            resolve_graph_model(key, where=f"model_overrides.{key}")
        return out

    def check(self, ctx: RunContext) -> None:
        """Resolve every model and config, build each model and check one forward pass's shape."""
        import torch

        from mlcore.registry import get_registry
        from mlcore_diffplan_vins.graphs.data import collate_graphs

        reg = get_registry()
        graphs, targets = collate_graphs(list(self.data().train_set().items[:2]))
        for name, cfg in self.model_configs().items():
            model = reg.get("model", name).build(cfg)
            with torch.no_grad():
                out = model(graphs)
            if tuple(out.shape) != tuple(targets.shape):
                raise ConfigError(f"model {name!r} returned {list(out.shape)}; expected {list(targets.shape)}")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Train, evaluate, compare, plot and report; returns the flat headline metrics."""
        from mlcore.registry import get_registry
        from mlcore.seeding import seed_everything
        from mlcore.training.checkpoint import make_meta
        from mlcore_diffplan_vins.graphs.baselines import greedy_choices, optimal_choices
        from mlcore_diffplan_vins.graphs.evaluation import GraphRolloutEvaluator
        from mlcore_diffplan_vins.graphs.loss import GraphActionLoss
        from mlcore_diffplan_vins.graphs.metrics import graph_rollout

        cfg = self.config
        reg = get_registry()
        data = self.data()
        continuous = bool(data.config.continuous)
        loss_cfg = attrs.evolve(cfg.loss, continuous=continuous)
        test = data.graphs_of("test")
        if cfg.evaluator.max_graphs:
            test = test.subset(slice(0, cfg.evaluator.max_graphs))
        n_train = len(data.graphs_of("train"))
        evaluator = GraphRolloutEvaluator(cfg.evaluator)
        rows: dict[str, dict[str, Any]] = {}
        trained: dict[str, Any] = {}
        for name, mcfg in self.model_configs().items():
            seed_everything(ctx.seed)
            model = reg.get("model", name).build(mcfg)
            trainer = reg.get("trainer", "supervised").build(
                cfg.trainer, device=ctx.device, seed=ctx.seed, progress=ctx.progress
            )
            meta = make_meta(
                plugin=PLUGIN,
                components={
                    "dataset": (cfg.dataset.name, cfg.dataset.config),
                    "model": (name, mcfg),
                    "loss": ("graph-action", loss_cfg),
                    "evaluator": ("graph-rollout", cfg.evaluator),
                },
                data=data,
                pipeline=f"{ctx.plugin}/{ctx.pipeline}",
                profile=ctx.profile,
                seed=ctx.seed,
            )
            params = sum(p.numel() for p in model.parameters())
            log.info("training %s (%d parameters)", name, params)
            fit = trainer.fit(model, data, GraphActionLoss(loss_cfg), run_dir=ctx.path("models", name), meta=meta)
            if fit.stopped_reason == "interrupted":
                raise RunInterrupted(
                    f"interrupted while training {name}: run the same command to resume", run_dir=str(ctx.out_dir)
                )
            row: dict[str, Any] = {
                "params": params,
                "epochs": fit.epochs_run,
                "train_seconds": fit.train_seconds,
                "graphs_per_second": fit.epochs_run * n_train / max(fit.train_seconds, 1e-9),
                "best_val_loss": fit.best_metric,
            }
            row.update(evaluator.score(model, test, continuous=continuous, device=ctx.device))
            rows[name] = row
            trained[name] = model
        for name, choices in (("greedy", greedy_choices(test)), ("optimal", optimal_choices(test))):
            rows[name] = {"params": 0, **{k: float(v) for k, v in graph_rollout(test, choices).items()}}
        plots = self._plots(ctx, trained, test, continuous)
        results = {
            "notes": cfg.notes,
            "dataset": {
                "name": cfg.dataset.name,
                **data.params,
                "continuous": continuous,
                "train": n_train,
                "test": len(test),
                "generate_seconds": data.generate_seconds,
            },
            "models": rows,
            "plots": plots,
        }
        ctx.write_json("results.json", results)
        ctx.write_text("report.md", self._report(ctx, rows, results, plots, continuous))
        flat: dict[str, Any] = {}
        for name, row in rows.items():
            for key in ("opt", "succ", "action_accuracy", "angular_error_deg"):
                if key in row:
                    flat[f"{name}_{key}"] = float(row[key])
        return flat

    def _plots(self, ctx: RunContext, models: dict[str, Any], test: Any, continuous: bool) -> list[str]:
        """One figure per plotted test graph: each model's values and path from the farthest start node."""
        if not self.config.plot_graphs or not models:
            return []
        from mlcore_diffplan_vins.graphs.evaluation import predict
        from mlcore_diffplan_vins.graphs.metrics import choices_from_directions, choices_from_logits
        from mlcore_diffplan_vins.graphs.plots import plot_graph_predictions

        paths = []
        for i in range(min(self.config.plot_graphs, len(test))):
            one = test.subset([i])
            policies = {}
            for name, model in models.items():
                out, values = predict(model, one, continuous=continuous, device=ctx.device)
                pick = choices_from_directions if continuous else choices_from_logits
                policies[name] = (pick(one, out), values)
            path = plot_graph_predictions(ctx.path("plots", f"graph_{i}.png"), one, policies)
            paths.append(str(path.relative_to(ctx.out_dir)))
        return paths

    def _report(
        self,
        ctx: RunContext,
        rows: dict[str, dict[str, Any]],
        results: dict[str, Any],
        plots: list[str],
        continuous: bool,
    ) -> str:
        """``report.md``: what was run, the headline table with the baselines, plots."""
        cfg = self.config
        ds = results["dataset"]
        learned = [n for n in rows if n not in ("greedy", "optimal")]
        best = max(learned, key=lambda n: (rows[n]["opt"], rows[n]["succ"])) if learned else None
        what = (
            f"{ds.get('size', '?')}×{ds.get('size', '?')} maze graphs (every cell a node, obstacles marked, "
            f"{ds.get('actions', 4)} moves per node)"
            if cfg.dataset.name == "maze-graphs"
            else f"random geometric graphs ({ds.get('nodes')} nodes, {ds.get('degree')} nearest neighbours, "
            f"{ds.get('obstacles')} disc obstacles)"
        )
        lines = [f"# Graph planners on {what}", ""]
        if cfg.notes:
            lines += [f"*Notes:* {cfg.notes}", ""]
        lines += [
            "## Setup",
            "",
            f"{ds['train']} training and {ds['test']} test graphs (seed {ds.get('seed')}, generated in "
            f"{ds['generate_seconds']:.1f} s), exact labels from Dijkstra; "
            + (
                "targets are unit directions toward the optimal neighbour (continuous actions; a predicted direction "
                "is snapped to the best-aligned neighbour when rolled out). "
                if continuous
                else "targets are the optimal next-node sets. "
            )
            + f"Every model saw the same graphs, trainer ({cfg.trainer.optimizer}, lr {cfg.trainer.lr:g}, "
            f"batch {cfg.trainer.batch_size}, {cfg.trainer.epochs} epochs) and seed {ctx.seed} "
            f"(profile `{ctx.profile}`).",
            "",
            "Metrics: each policy is rolled out from **every reachable start node** of every test graph. "
            "**%Opt**: share of start nodes whose path reaches the goal at the optimal cost; **%Succ**: share that "
            "reach it at all; **action acc.**: share whose first move is optimal"
            + (
                "; **angle**: mean angle between the predicted direction and the closest optimal move."
                if continuous
                else "."
            )
            + " `greedy` moves to the free neighbour nearest the goal (no planning); `optimal` follows the labels.",
            "",
            "## Results",
            "",
        ]
        if best is not None:
            r, g = rows[best], rows["greedy"]
            lines += [
                f"The best planner, **{best}**, follows an optimal path from {100 * r['opt']:.1f} % of start nodes and "
                f"reaches the goal from {100 * r['succ']:.1f} % (greedy baseline: {100 * g['opt']:.1f} % / "
                f"{100 * g['succ']:.1f} %).",
                "",
            ]
        angle = continuous and any("angular_error_deg" in r for r in rows.values())
        lines += [
            "| model | params | %Opt | %Succ | action acc. |" + (" angle (°) |" if angle else "") + " train s |",
            "|---|---:|---:|---:|---:|" + ("---:|" if angle else "") + "---:|",
        ]
        for name, r in rows.items():
            label = {"greedy": "greedy (baseline)", "optimal": "optimal (Dijkstra)"}.get(name, name)
            cells = [
                label,
                f"{r['params']:,}",
                f"{100 * r['opt']:.1f}",
                f"{100 * r['succ']:.1f}",
                f"{100 * r['action_accuracy']:.1f}",
            ]
            if angle:
                cells.append(f"{r['angular_error_deg']:.1f}" if "angular_error_deg" in r else "–")
            cells.append(f"{r['train_seconds']:.0f}" if "train_seconds" in r else "–")
            lines.append("| " + " | ".join(cells) + " |")
        if plots:
            lines += [
                "",
                "## Plots",
                "",
                "Each figure shows one test graph: obstacles black squares, goal star, start (the node farthest from "
                "the goal) cyan; per model its node values and the path its policy takes.",
                "",
            ]
            lines += [f"![graph]({p})" for p in plots]
        lines += ["", "Files: `results.json` (all figures), `models/<name>/checkpoints/best.pt`, `config.toml`.", ""]
        return "\n".join(lines)
