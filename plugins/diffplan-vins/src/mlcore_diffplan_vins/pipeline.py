"""The plugin's pipelines: ``grid`` (default), ``compare`` and ``single``.

``grid`` / ``compare`` (:class:`PlannerComparison`) train several planners on *identical* data
(one generated maze set, one seed each), score every one by rolling its policy out from every
reachable start cell of the test mazes, test generalisation to larger mazes, add the greedy
baseline, and write ``results.json``, plots and a ``report.md`` that reads like a results
section. ``single`` (:class:`SinglePlanner`) is the supervised recipe for one planner, chosen
with ``--set model.name=symvin`` or, by its published name, ``--set algorithm=SymVIN``.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from mlcore.config import in_range
from mlcore.errors import ConfigError, RunInterrupted
from mlcore.pipelines import Pipeline, RecipePipeline
from mlcore.pipelines.recipe import Recipe
from mlcore.pipelines.sections import ComponentConfig, component_field
from mlcore.runs import RunContext
from mlcore.training.config import TrainerConfig
from mlcore_diffplan_vins.data import GridMazesConfig
from mlcore_diffplan_vins.evaluation import GridRolloutConfig
from mlcore_diffplan_vins.loss import OptimalSetLossConfig
from mlcore_diffplan_vins.models import MODEL_SPECS

log = logging.getLogger(__name__)

__all__ = [
    "CompareAllConfig",
    "ComparisonConfig",
    "GeneralisationConfig",
    "PlannerComparison",
    "PlannerSettings",
    "SingleConfig",
    "SinglePlanner",
    "apply_settings",
    "resolve_model_name",
    "switch_planner",
]

PLUGIN = "diffplan-vins"


def research_trainer() -> TrainerConfig:
    """The research setup: 100 epochs, batch 32, RMSprop (no momentum) at lr 1e-3, constant rate."""
    return TrainerConfig(
        epochs=100,
        batch_size=32,
        optimizer="rmsprop",
        lr=1e-3,
        momentum=0.0,
        scheduler="none",
        trackers=[],
        callbacks=[],
        async_checkpoint=False,
    )


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def resolve_model_name(name: str, where: str = "models") -> str:
    """A registered planner's name from ``name`` or its published spelling (``SymVIN``, ``DE-VIN``...)."""
    names = [n for n, *_ in MODEL_SPECS]
    if name in names:
        return name
    for candidate in names:
        if _key(candidate) == _key(name):
            return candidate
    raise ConfigError(f"{where}: unknown planner {name!r} (registered: {', '.join(names)})")


def switch_planner(model: ComponentConfig, name: str, where: str = "algorithm") -> ComponentConfig:
    """``model`` switched to planner ``name``, keeping every setting the user changed from the old default.

    ``--set algorithm=SymVIN --set model.hidden_channels=8`` first applies ``hidden_channels`` to the
    default planner's config; this carries it over to SymVIN's. A changed setting the new planner
    does not have is refused in one line rather than silently dropped.
    """
    from mlcore.registry import get_registry

    if name == model.name:
        return model
    registry = get_registry()
    new_cls = registry.get("model", name).config_class()
    new_cfg = new_cls() if new_cls is not None else None
    old_cfg = model.config
    old_cls = registry.get("model", model.name).config_class() if old_cfg is not None else None
    if old_cfg is None or old_cls is None or not attrs.has(type(old_cfg)):
        return ComponentConfig(name, new_cfg)
    default = old_cls()
    changed = {
        f.name: getattr(old_cfg, f.name)
        for f in attrs.fields(type(old_cfg))
        if getattr(old_cfg, f.name) != getattr(default, f.name)
    }
    if not changed:
        return ComponentConfig(name, new_cfg)
    have = {f.name for f in attrs.fields(type(new_cfg))} if new_cfg is not None and attrs.has(type(new_cfg)) else set()
    missing = sorted(set(changed) - have)
    if missing:
        raise ConfigError(
            f"{where}: planner {name!r} has no setting {', '.join('model.' + m for m in missing)} "
            f"(given for {model.name!r}); remove it or choose the planner with model.name={name}"
        )
    assert new_cfg is not None
    return ComponentConfig(name, attrs.evolve(new_cfg, **changed))


def apply_settings(settings: Any, config: Any, where: str) -> Any:
    """``config`` with every field of ``settings`` that is set (not ``None``) and that ``config`` has replaced.

    Shared by the grid and graph pipelines' planner settings; the model config's own validators
    check the values, and a bad one is a one-line :class:`ConfigError` naming ``where``.
    """
    fields = attrs.fields_dict(type(config))
    changes = {f: v for f, v in attrs.asdict(settings).items() if v is not None and f in fields}
    try:
        return attrs.evolve(config, **changes)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


@attrs.define
class PlannerSettings:
    """Hyperparameters applied to every planner whose config has the field (``None`` = the model's default).

    Attributes:
        k: value-iteration steps K.
        hidden_channels: l_h.
        q_channels: l_q.
        kernel_size: the transition kernel.
        group: symmetry group of the symmetric planners (``d4``).
        max_iter, tol: deep-equilibrium solver limits.
    """

    k: int | None = attrs.field(default=None, validator=in_range(1, 1000))
    hidden_channels: int | None = attrs.field(default=None, validator=in_range(1, 4096))
    q_channels: int | None = attrs.field(default=None, validator=in_range(1, 4096))
    kernel_size: int | None = None
    group: str | None = "d4"
    max_iter: int | None = attrs.field(default=None, validator=in_range(1, 100_000))
    tol: float | None = attrs.field(default=None, validator=in_range(0.0, low_open=True))

    def apply(self, config: Any, where: str) -> Any:
        """``config`` with every set field it has replaced (validated by the model config)."""
        return apply_settings(self, config, where)


@attrs.define
class GeneralisationConfig:
    """Test on larger mazes than the training ones.

    Attributes:
        sizes: maze sides to test on (e.g. ``[28, 50]``; empty = none).
        num: test mazes per size.
        scale_k: scale each planner's K with the maze side (``K * size / train size``), since value
            information travels one cell per iteration.
    """

    sizes: list[int] = attrs.field(factory=lambda: [28])
    num: int = attrs.field(default=100, validator=in_range(1, 1_000_000))
    scale_k: bool = True


@attrs.define
class ComparisonConfig:
    """Config of the ``grid`` pipeline (VIN and SymVIN side by side).

    Attributes:
        notes: free text recorded in the report.
        models: planners to train (registered names or published spellings, ``mlcore list model``).
        planner: hyperparameters shared by all of them (K, l_h, l_q, group, ...).
        model_overrides: per-model fields applied after ``planner``, e.g. ``[model_overrides.symvin]
            q_channels = 8`` (the symmetric models count channels in regular D4 fields of 8).
        dataset, loss, trainer, evaluator: one table each; every model gets the same data and trainer.
        generalisation: the larger-maze test.
        plot_mazes: test mazes drawn in ``plots/`` with each model's path and value map.
    """

    notes: str = ""
    models: list[str] = attrs.field(factory=lambda: ["vin", "symvin"])
    planner: PlannerSettings = attrs.field(factory=PlannerSettings)
    model_overrides: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    dataset: GridMazesConfig = attrs.field(factory=GridMazesConfig)
    loss: OptimalSetLossConfig = attrs.field(factory=OptimalSetLossConfig)
    trainer: TrainerConfig = attrs.field(factory=research_trainer)
    evaluator: GridRolloutConfig = attrs.field(factory=GridRolloutConfig)
    generalisation: GeneralisationConfig = attrs.field(factory=GeneralisationConfig)
    plot_mazes: int = attrs.field(default=1, validator=in_range(0, 20))


@attrs.define
class CompareAllConfig(ComparisonConfig):
    """Config of the ``compare`` pipeline: :class:`ComparisonConfig` with every registered planner."""

    models: list[str] = attrs.field(factory=lambda: [n for n, *_ in MODEL_SPECS])


class PlannerComparison(Pipeline):
    """Train several planners on the same mazes and compare them (see the module docstring)."""

    config: ComparisonConfig

    def __init__(self, config: ComparisonConfig | None = None) -> None:
        super().__init__(config or ComparisonConfig())
        self._data: Any = None
        self._models: dict[str, tuple[Any, Any]] | None = None

    # ------------------------------------------------------------------ building
    def data(self) -> Any:
        """The prepared ``grid-mazes`` data module (built once)."""
        if self._data is None:
            from mlcore_diffplan_vins.data import GridMazes

            self._data = GridMazes(self.config.dataset).prepare()
        return self._data

    def model_configs(self) -> dict[str, Any]:
        """``{name: model config}`` of every planner, with the shared settings and the data's action count."""
        from mlcore.registry import get_registry

        if not self.config.models:
            raise ConfigError("models is empty: name at least one planner (see `mlcore list model`)")
        reg = get_registry()
        out: dict[str, Any] = {}
        for raw in self.config.models:
            name = resolve_model_name(raw)
            if name in out:
                raise ConfigError(f"models: {name!r} is listed twice")
            cls = reg.get("model", name).config_class()
            if cls is None:
                raise ConfigError(f"models: planner {name!r} has no config class")
            cfg = self.config.planner.apply(cls(), f"planner (for model {name!r})")
            extra = self.config.model_overrides.get(name, self.config.model_overrides.get(raw, {}))
            fields = attrs.fields_dict(cls)
            for key, value in extra.items():
                if key not in fields:
                    raise ConfigError(
                        f"model_overrides.{name}.{key}: {name!r} has no such field (fields: {', '.join(fields)})"
                    )
                try:
                    cfg = attrs.evolve(cfg, **{key: value})
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"model_overrides.{name}: {exc}") from None
            out[name] = attrs.evolve(cfg, num_actions=self.config.dataset.actions)
        for key in self.config.model_overrides:  # overrides of planners not selected are kept for later runs
            resolve_model_name(key, where=f"model_overrides.{key}")
        return out

    def check(self, ctx: RunContext) -> None:
        """Resolve every model name and config, build each model and check one forward pass's shape."""
        import torch

        from mlcore.registry import get_registry
        from mlcore_diffplan_vins.data import maze_tensors

        reg = get_registry()
        data = self.data()
        maps, targets = maze_tensors(data.mazes_of("train").subset(slice(0, 2)))
        for name, cfg in self.model_configs().items():
            model = reg.get("model", name).build(cfg)
            with torch.no_grad():
                out = model(maps)
            if tuple(out.shape) != tuple(targets.shape):
                raise ConfigError(
                    f"model {name!r} returned {list(out.shape)} for maps {list(maps.shape)}; "
                    f"expected {list(targets.shape)}"
                )

    # ------------------------------------------------------------------ the flow
    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Train, evaluate, compare, plot and report; returns the flat headline metrics."""
        from mlcore.registry import get_registry
        from mlcore.seeding import seed_everything
        from mlcore.training.checkpoint import make_meta
        from mlcore_diffplan_vins.baselines import greedy_actions
        from mlcore_diffplan_vins.evaluation import GridRolloutEvaluator
        from mlcore_diffplan_vins.loss import OptimalSetLoss
        from mlcore_diffplan_vins.mazes import generate_mazes
        from mlcore_diffplan_vins.metrics import rollout_metrics

        cfg = self.config
        reg = get_registry()
        data = self.data()
        test = data.mazes_of("test")
        n_train = len(data.mazes_of("train"))
        gen_sets = {
            size: generate_mazes(cfg.generalisation.num, size, cfg.dataset.actions, cfg.dataset.seed + 1000 + size)
            for size in cfg.generalisation.sizes
        }
        evaluator = GridRolloutEvaluator(cfg.evaluator)
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
                    "dataset": ("grid-mazes", cfg.dataset),
                    "model": (name, mcfg),
                    "loss": ("optimal-set-ce", cfg.loss),
                },
                data=data,
                pipeline=f"{ctx.plugin}/{ctx.pipeline}",
                profile=ctx.profile,
                seed=ctx.seed,
            )
            log.info("training %s (%d parameters)", name, sum(p.numel() for p in model.parameters()))
            fit = trainer.fit(model, data, OptimalSetLoss(cfg.loss), run_dir=ctx.path("models", name), meta=meta)
            if fit.stopped_reason == "interrupted":
                raise RunInterrupted(
                    f"interrupted while training {name}: run the same command to resume", run_dir=str(ctx.out_dir)
                )
            row: dict[str, Any] = {
                "params": sum(p.numel() for p in model.parameters()),
                "epochs": fit.epochs_run,
                "train_seconds": fit.train_seconds,
                "mazes_per_second": fit.epochs_run * n_train / max(fit.train_seconds, 1e-9),
                "best_val_loss": fit.best_metric,
                "history": fit.history,
            }
            row.update(evaluator.score(model, test, device=ctx.device))
            for size, mazes in gen_sets.items():
                row[f"gen{size}"] = self._generalise(model, mazes, data.mazes_of("train").size, evaluator, ctx)
            rows[name] = row
            trained[name] = model
        baseline: dict[str, Any] = dict(rollout_metrics(test, greedy_actions(test.walls, test.goals, test.num_actions)))
        for size, mazes in gen_sets.items():
            baseline[f"gen{size}"] = dict(
                rollout_metrics(mazes, greedy_actions(mazes.walls, mazes.goals, mazes.num_actions))
            )
        rows["greedy"] = {"params": 0, **baseline}
        plots = self._plots(ctx, trained, test)
        results = {
            "notes": cfg.notes,
            "dataset": {**data.params, "train": n_train, "test": len(test), "generate_seconds": data.generate_seconds},
            "models": {k: {kk: vv for kk, vv in v.items() if kk != "history"} for k, v in rows.items()},
            "plots": plots,
        }
        ctx.write_json("results.json", results)
        ctx.write_text("report.md", self._report(ctx, rows, results, plots))
        flat: dict[str, Any] = {}
        for name, row in rows.items():
            for key in ("opt", "succ", "action_accuracy", "mazes_per_second"):
                if key in row:
                    flat[f"{name}_{key}"] = float(row[key])
            for size in gen_sets:
                flat[f"{name}_gen{size}_succ"] = float(row[f"gen{size}"]["succ"])
        return flat

    def _generalise(self, model: Any, mazes: Any, train_size: int, evaluator: Any, ctx: RunContext) -> dict[str, float]:
        """Metrics on larger mazes, with K scaled to the maze side when configured."""
        mcfg = getattr(model, "config", None)
        old_k = getattr(mcfg, "k", None)
        if self.config.generalisation.scale_k and isinstance(old_k, int):
            mcfg.k = max(old_k, round(old_k * mazes.size / train_size))  # type: ignore[union-attr]
        try:
            out: dict[str, float] = evaluator.score(model, mazes, device=ctx.device)
            if isinstance(old_k, int):
                out["k"] = float(mcfg.k)  # type: ignore[union-attr]
            return out
        finally:
            if isinstance(old_k, int):
                mcfg.k = old_k  # type: ignore[union-attr]

    def _plots(self, ctx: RunContext, models: dict[str, Any], test: Any) -> list[str]:
        """One figure per plotted maze: the maze, each model's path from the farthest start cell and value map."""
        if not self.config.plot_mazes or not models:
            return []
        from mlcore_diffplan_vins.plots import plot_maze_predictions

        paths = []
        for i in range(min(self.config.plot_mazes, len(test))):
            path = ctx.plots_dir / f"maze_{i}.png"
            plot_maze_predictions(path, test.subset(slice(i, i + 1)), models, device=ctx.device)
            paths.append(str(path.relative_to(ctx.out_dir)))
        return paths

    def _report(
        self, ctx: RunContext, rows: dict[str, dict[str, Any]], results: dict[str, Any], plots: list[str]
    ) -> str:
        """``report.md``: what was run, the headline table, the generalisation table, plots."""
        cfg = self.config
        ds = results["dataset"]
        sizes = cfg.generalisation.sizes
        learned = [n for n in rows if n != "greedy"]
        best = max(learned, key=lambda n: (rows[n]["opt"], rows[n]["succ"])) if learned else None
        lines = [f"# Differentiable planners on {cfg.dataset.size}×{cfg.dataset.size} mazes", ""]
        if cfg.notes:
            lines += [f"*Notes:* {cfg.notes}", ""]
        lines += [
            "## Setup",
            "",
            f"{ds['train']} training and {ds['test']} test mazes ({cfg.dataset.num} in all, generated with seed "
            f"{cfg.dataset.seed} in {ds['generate_seconds']:.1f} s: depth-first carving, interior walls opened with a "
            f"per-maze probability d ~ U(0,1), goal uniform over free cells, {cfg.dataset.actions} actions), "
            f"exact labels from Dijkstra. Every model saw the same mazes, trainer "
            f"({cfg.trainer.optimizer}, lr {cfg.trainer.lr:g}, batch {cfg.trainer.batch_size}, "
            f"{cfg.trainer.epochs} epochs) and seed {ctx.seed} (profile `{ctx.profile}`).",
            "",
            "Metrics: the greedy policy (argmax of the logits) is rolled out from **every reachable start cell** of "
            "every test maze. **%Opt**: share of start cells whose path reaches the goal at the optimal cost; "
            "**%Succ**: share that reach the goal at all; **action acc.**: share whose first action is optimal. "
            "`greedy` is the planner-free baseline (step to the free neighbour nearest the goal).",
            "",
            "## Results",
            "",
        ]
        if best is not None:
            r = rows[best]
            lines += [
                f"The best model, **{best}**, follows an optimal path from {100 * r['opt']:.1f} % of start cells and "
                f"reaches the goal from {100 * r['succ']:.1f} % "
                f"(greedy baseline: {100 * rows['greedy']['opt']:.1f} % / "
                f"{100 * rows['greedy']['succ']:.1f} %).",
                "",
            ]
        lines += [
            "| model | params | %Opt | %Succ | action acc. | epochs | train s | mazes/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in rows.items():
            if name == "greedy":
                lines.append(
                    f"| greedy (baseline) | 0 | {100 * r['opt']:.1f} | {100 * r['succ']:.1f} | "
                    f"{100 * r['action_accuracy']:.1f} | – | – | – |"
                )
            else:
                lines.append(
                    f"| {name} | {r['params']:,} | {100 * r['opt']:.1f} | {100 * r['succ']:.1f} | "
                    f"{100 * r['action_accuracy']:.1f} | {r['epochs']} | {r['train_seconds']:.0f} | "
                    f"{r['mazes_per_second']:.0f} |"
                )
        conv = {n: r for n, r in rows.items() if "convergence_iterations" in r}
        if conv:
            lines += ["", "Deep-equilibrium solvers on the test mazes (mean per batch):", ""]
            for n, r in conv.items():
                lines.append(
                    f"- {n}: {r['convergence_iterations']:.1f} iterations, "
                    f"residual {r.get('convergence_residual', float('nan')):.2e}"
                )
        if sizes:
            lines += [
                "",
                "## Generalisation to larger mazes",
                "",
                f"Trained on {cfg.dataset.size}×{cfg.dataset.size}, "
                f"tested on {cfg.generalisation.num} new mazes per size"
                + (" with K scaled to the maze side." if cfg.generalisation.scale_k else " with the training K."),
                "",
                "| model | " + " | ".join(f"{s}×{s} %Opt | {s}×{s} %Succ" for s in sizes) + " |",
                "|---|" + "---:|---:|" * len(sizes),
            ]
            for name, r in rows.items():
                cells = " | ".join(f"{100 * r[f'gen{s}']['opt']:.1f} | {100 * r[f'gen{s}']['succ']:.1f}" for s in sizes)
                lines.append(f"| {name} | {cells} |")
        if plots:
            lines += ["", "## Plots", ""]
            lines += [
                "Each figure shows one test maze: walls black, goal star; for every model its value map and the path "
                "its policy takes from the start cell farthest from the goal (green: optimal, orange: reaches the "
                "goal, red: fails).",
                "",
            ]
            lines += [f"![maze]({p})" for p in plots]
        curves = [n for n in learned if ctx.path("models", n, "training_curves.png").exists()]
        if curves:
            lines += [
                "",
                "Training curves: " + ", ".join(f"[{n}](models/{n}/training_curves.png)" for n in curves) + ".",
            ]
        lines += ["", "Files: `results.json` (all figures), `models/<name>/checkpoints/best.pt`, `config.toml`.", ""]
        return "\n".join(lines)


# --------------------------------------------------------------------------- one model


@attrs.define
class SingleConfig:
    """Config of the ``single`` pipeline: one planner trained with the supervised recipe.

    Attributes:
        notes: free text recorded in the report.
        algorithm: the planner by its published name (``VIN``, ``SymVIN``, ``DE-VIN``, ...); overrides
            ``model.name`` when set.
        dataset, model, loss, trainer, evaluator: the recipe's tables (``model`` has ``name = ...``).
    """

    notes: str = ""
    algorithm: str = ""
    dataset: GridMazesConfig = attrs.field(factory=GridMazesConfig)
    model: ComponentConfig = component_field("model", "vin")
    loss: OptimalSetLossConfig = attrs.field(factory=OptimalSetLossConfig)
    trainer: TrainerConfig = attrs.field(factory=research_trainer)
    evaluator: GridRolloutConfig = attrs.field(factory=GridRolloutConfig)


class SinglePlanner(RecipePipeline[SingleConfig]):
    """The supervised recipe on ``grid-mazes`` with one planner."""

    recipe = Recipe(dataset="grid-mazes", model=None, loss="optimal-set-ce", evaluator="grid-rollout")

    def __init__(self, config: SingleConfig | None = None) -> None:
        config = config or SingleConfig()
        if config.algorithm:
            name = resolve_model_name(config.algorithm, where="algorithm")
            config = attrs.evolve(config, model=switch_planner(config.model, name))
        super().__init__(config)

    def report_sections(self, ctx: RunContext, parts: Any, metrics: dict[str, float]) -> list[tuple[str, str]]:
        """What the headline numbers mean, and the notes."""
        text = (
            f"{parts.components['model'][0]} rolled out from every reachable start cell of the test mazes: "
            f"{100 * metrics.get('opt', float('nan')):.1f} % of start cells follow an optimal path (%Opt), "
            f"{100 * metrics.get('succ', float('nan')):.1f} % reach the goal (%Succ)."
        )
        if self.config.notes:
            text += f"\n\nNotes: {self.config.notes}"
        return [("Results", text)]
