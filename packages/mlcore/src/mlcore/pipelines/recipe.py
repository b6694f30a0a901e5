"""Supervised pipelines declared as data: a :class:`Recipe` names the parts, :class:`RecipePipeline` runs them.

See :class:`RecipePipeline` for the flow, the hooks and an example.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import attrs

from mlcore.config import ComponentConfig, in_range, one_of
from mlcore.errors import ConfigError, MlcoreError, RunInterrupted
from mlcore.pipelines import Pipeline

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlcore.data import DataModule
    from mlcore.evaluation import Evaluator
    from mlcore.export import ExportResult
    from mlcore.runs import RunContext
    from mlcore.training import FitResult, Trainer

log = logging.getLogger(__name__)

__all__ = ["ExportConfig", "Parts", "Recipe", "RecipePipeline", "link_dimensions"]

C = TypeVar("C")

#: The parts of a recipe, in the order they are built.
PARTS: tuple[str, ...] = ("dataset", "model", "loss", "trainer", "evaluator")


@attrs.frozen
class Recipe:
    """The registered components a supervised pipeline is made of (names only: cheap to declare).

    Attributes:
        dataset, model, loss, trainer, evaluator: registered names (``mlcore list KIND``), used when
            the pipeline config's table of that kind holds the component's own config (or is
            absent). ``None``: the config must name it (``dataset``/``model``), or the part is
            skipped (``loss``: the model's ``compute_loss`` does without; ``evaluator``: no evaluation).
        title: the heading of ``report.md`` (default ``"<model> on <dataset>"``).
    """

    dataset: str | None = None
    model: str | None = None
    loss: str | None = "mse"
    trainer: str = "supervised"
    evaluator: str | None = None
    title: str = ""


@attrs.define
class ExportConfig:
    """The export stage of a recipe (a config field ``export: ExportConfig``; absent = no export).

    Attributes:
        enabled: export the trained model (it must define ``example_input(batch_size)``).
        format: ``onnx`` or ``torchscript``.
        atol: tolerance of the outputs-match check against the eager model (also used as rtol).
    """

    enabled: bool = True
    format: str = attrs.field(default="onnx", validator=one_of("onnx", "torchscript"))
    atol: float = attrs.field(default=1e-4, validator=in_range(0, low_open=True))


@attrs.define
class Parts(Generic[C]):
    """The built parts of a recipe run, handed to the hooks.

    Attributes:
        config: the pipeline config after :meth:`RecipePipeline.link` (and ``save_data`` in ``run``).
        data: the prepared data module.
        model, loss, trainer, evaluator: the built components (``loss``/``evaluator`` may be ``None``).
        components: ``{kind: (name, config)}`` as recorded in the checkpoint's meta.
        fit: the trainer's :class:`~mlcore.training.FitResult` (``None`` before training).
        export: the :class:`~mlcore.export.ExportResult` (``None`` without export, or when it was skipped).
    """

    config: C
    data: DataModule
    model: nn.Module
    loss: Any
    trainer: Trainer
    evaluator: Evaluator | None
    components: dict[str, tuple[str, Any]]
    fit: FitResult | None = None
    export: ExportResult | None = None


def _field_default(cls: type, name: str) -> Any:
    default: Any = attrs.fields_dict(cls)[name].default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory(None) if default.takes_self else default.factory()
    return default


def link_dimensions(model_config: Any, dims: Mapping[str, Any], *, where: str = "model") -> Any:
    """``model_config`` with every field named in ``dims`` set to the data's value.

    A field the user set to something else (neither its default nor the data's value) is a
    :class:`ConfigError` naming both, since the data decides it. Fields the model config does
    not have are ignored.
    """
    if model_config is None or not attrs.has(type(model_config)) or not dims:
        return model_config
    names = attrs.fields_dict(type(model_config))
    changes = {}
    for key, value in dims.items():
        if key not in names:
            continue
        current = getattr(model_config, key)
        if current == value:
            continue
        if current != _field_default(type(model_config), key):
            raise ConfigError(
                f"{where}.{key}={current!r} contradicts the data, which has {key}={value!r}: the data sets it, "
                f"so remove {where}.{key} (or change the dataset's config)"
            )
        changes[key] = value
    return attrs.evolve(model_config, **changes) if changes else model_config


class RecipePipeline(Pipeline, Generic[C]):
    """Runs a :class:`Recipe`: build -> check -> make_meta -> Trainer -> evaluator -> export -> report.

    A plugin whose pipeline is "dataset -> model -> loss -> trainer -> evaluator -> report" writes
    its config (one table per part) and a :class:`Recipe`; :class:`RecipePipeline` does the rest:

    1. build the dataset, let it give the model its dimensions (:meth:`RecipePipeline.link`), build
       the model, loss, trainer and evaluator through the registry;
    2. :meth:`~RecipePipeline.check`: one forward pass on one batch, the prediction's shape against
       the target's, a one-line :class:`~mlcore.errors.ConfigError` naming both shapes and the config
       keys behind them, before anything is written;
    3. :func:`~mlcore.training.checkpoint.make_meta` (so ``mlcore evaluate``/``export`` need only the
       checkpoint), :class:`~mlcore.training.Trainer` (resuming from ``checkpoints/last.pt``), the
       evaluator, an optional export (a config field ``export: ExportConfig``) and ``report.md``.

    Example (``my_plugin/pipeline.py``; ``plugin.py`` registers ``MyPipeline``/``MyConfig`` by path)::

        import attrs
        from mlcore.config import ComponentConfig, component_field
        from mlcore.evaluation.regression import RegressionEvaluatorConfig
        from mlcore.pipelines import Recipe, RecipePipeline
        from mlcore.training import TrainerConfig
        from my_plugin.data import SineDataConfig
        from my_plugin.model import SineMLPConfig

        @attrs.define
        class MyConfig:
            dataset: SineDataConfig = attrs.field(factory=SineDataConfig)
            model: SineMLPConfig = attrs.field(factory=SineMLPConfig)
            loss: ComponentConfig = component_field("loss", "mse")   # any registered loss
            trainer: TrainerConfig = attrs.field(factory=TrainerConfig)
            evaluator: RegressionEvaluatorConfig = attrs.field(factory=RegressionEvaluatorConfig)

        class MyPipeline(RecipePipeline[MyConfig]):
            recipe = Recipe(dataset="sine", model="sine_mlp", evaluator="regression")

    A table holding a part's own config class uses the recipe's name for that part; a
    ``component_field`` table (``name = ...`` in TOML) names the part itself; a plain string names
    a registered part with its default config. Optional hooks, all no-ops by default:
    :meth:`~RecipePipeline.link`, :meth:`~RecipePipeline.save_data`,
    :meth:`~RecipePipeline.prepare_model`, :meth:`~RecipePipeline.extra_metrics`,
    :meth:`~RecipePipeline.report_sections`. A pipeline with a different flow (RL, several models)
    subclasses :class:`~mlcore.pipelines.Pipeline` instead.

    Everything is built once: :meth:`check` builds the parts, :meth:`run` reuses them.
    """

    recipe: ClassVar[Recipe] = Recipe()
    config: C

    def __init__(self, config: C | None = None) -> None:
        super().__init__(config)
        self._parts: Parts[C] | None = None
        self._checked = False

    # ------------------------------------------------------------------ hooks
    def link(self, config: C, data: DataModule) -> C:
        """The config with the model's dimensions taken from the data.

        Default: :func:`link_dimensions` with ``data.dimensions()`` (e.g. ``{"window": 16}``) on the
        ``model`` table, so sizes are configured once, in the dataset's table.
        """
        model_cfg = getattr(config, "model", None)
        dims = data.dimensions()
        if isinstance(model_cfg, ComponentConfig):
            inner = link_dimensions(model_cfg.config, dims)
            linked: Any = model_cfg if inner is model_cfg.config else ComponentConfig(model_cfg.name, inner)
        else:
            linked = link_dimensions(model_cfg, dims)
        return config if linked is model_cfg else attrs.evolve(cast(Any, config), model=linked)  # type: ignore[no-any-return]

    def save_data(self, ctx: RunContext, config: C, data: DataModule) -> C:
        """Keep the data with the run (called in :meth:`run`, after the check): write its files
        under ``ctx.out_dir`` and return the config that reads them back, which the checkpoint
        records. Files already there (a resumed run) are kept. Default: write nothing."""
        return config

    def prepare_model(self, model: nn.Module, data: DataModule) -> None:
        """Set what the model takes from the training data (normalisation buffers, ...). Default: nothing."""

    def extra_metrics(self, ctx: RunContext, parts: Parts[C]) -> dict[str, float]:
        """Figures beyond the evaluator's (baselines, extra plots written under ``ctx.plots_dir``)."""
        return {}

    def report_sections(self, ctx: RunContext, parts: Parts[C], metrics: dict[str, float]) -> list[tuple[str, str]]:
        """Extra ``(heading, markdown)`` sections of ``report.md``, after the metrics table."""
        return []

    # ------------------------------------------------------------------ building
    def component(self, config: C, kind: str) -> tuple[str, Any] | None:
        """``(registered name, config)`` of one part, or ``None`` when the recipe has none."""
        has_field = attrs.has(type(config)) and kind in attrs.fields_dict(cast(Any, type(config)))
        value = getattr(config, kind) if has_field else None
        if isinstance(value, ComponentConfig):
            return value.name, value.config
        if isinstance(value, str):
            return value, None
        name = getattr(self.recipe, kind)
        if name is None:
            if kind in ("dataset", "model"):
                raise ConfigError(f"[{kind}] is required: add a table with name = ... (see `mlcore list {kind}`)")
            return None
        return name, value

    def build(self, ctx: RunContext) -> Parts[C]:
        """Build every part once (data prepared, model linked to it); later calls return the same parts."""
        if self._parts is not None:
            return self._parts
        from mlcore.registry import get_registry
        from mlcore.seeding import seed_everything

        reg = get_registry()
        seed_everything(ctx.seed)  # the same initial weights whether or not check() ran first
        config = self.config
        found = self.component(config, "dataset")
        assert found is not None
        data = reg.get("dataset", found[0]).build(found[1]).prepare()
        config = self.link(config, data)
        parts = {kind: self.component(config, kind) for kind in PARTS}
        model_name, model_cfg = parts["model"]  # type: ignore[misc]
        model = reg.get("model", model_name).build(model_cfg)
        self.prepare_model(model, data)
        built: dict[str, Any] = {}
        for kind in ("loss", "evaluator"):
            item = parts[kind]
            built[kind] = None if item is None else reg.get(kind, item[0]).build(item[1])
        trainer_name, trainer_cfg = parts["trainer"]  # type: ignore[misc]
        trainer = reg.get("trainer", trainer_name).build(
            trainer_cfg, device=ctx.device, seed=ctx.seed, progress=ctx.progress
        )
        self._parts = Parts(config, data, model, built["loss"], trainer, built["evaluator"], self._components(config))
        return self._parts

    def _components(self, config: C) -> dict[str, tuple[str, Any]]:
        """``{kind: (name, config)}`` of the parts the checkpoint records (all but the trainer)."""
        found = {kind: self.component(config, kind) for kind in PARTS if kind != "trainer"}
        return {kind: item for kind, item in found.items() if item is not None}

    # ------------------------------------------------------------------ the flow
    def check(self, ctx: RunContext) -> None:
        """Build the parts and run one batch through the model; a wrong prediction shape is a one-line ConfigError."""
        parts = self.build(ctx)
        if parts.loss is None and not callable(getattr(parts.model, "compute_loss", None)):
            raise ConfigError(
                f"[loss] is required: model {parts.components['model'][0]!r} has no compute_loss(batch, loss_fn) "
                "(see `mlcore list loss`)"
            )
        check_prediction_shape(parts, model_key=_key(parts, "model"), dataset_key=_key(parts, "dataset"))
        self._checked = True

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Train (resuming from ``last.pt``), evaluate, export, report; returns the metrics."""
        from mlcore.report import write_report
        from mlcore.training.checkpoint import make_meta

        if not self._checked:
            self.check(ctx)
        parts = self.build(ctx)
        parts.config = self.save_data(ctx, parts.config, parts.data)
        parts.components = self._components(parts.config)
        model_spec_plugin = _plugin_of("model", parts.components["model"][0], ctx.plugin)
        meta = make_meta(
            plugin=model_spec_plugin,
            components=parts.components,
            data=parts.data,
            pipeline=f"{ctx.plugin}/{ctx.pipeline}",
            profile=ctx.profile,
            seed=ctx.seed,
        )
        fit = parts.trainer.fit(parts.model, parts.data, parts.loss, run_dir=ctx.out_dir, meta=meta)
        parts.fit = fit
        if fit.stopped_reason == "interrupted":
            raise RunInterrupted(
                f"interrupted: {fit.last_checkpoint} holds epoch {fit.epochs_run}; run the same command to resume",
                run_dir=str(ctx.out_dir),
            )
        metrics: dict[str, Any] = {
            "best_epoch": float(fit.best_epoch),
            "best_metric": float(fit.best_metric),
            "epochs_run": float(fit.epochs_run),
            "train_seconds": float(fit.train_seconds),
        }
        if parts.evaluator is not None:
            metrics.update(parts.evaluator.evaluate(parts.model, parts.data, device=ctx.device, out_dir=ctx.out_dir))
        export_cfg = getattr(parts.config, "export", None)
        if isinstance(export_cfg, ExportConfig) and export_cfg.enabled:
            metrics.update(self._export(ctx, parts, export_cfg))
        metrics.update(self.extra_metrics(ctx, parts))
        write_report(
            ctx.out_dir,
            title=self.recipe.title or f"{parts.components['model'][0]} on {parts.components['dataset'][0]}",
            metrics=metrics,
            sections=[("Run", _run_summary(ctx, fit)), *self.report_sections(ctx, parts, metrics)],
        )
        return metrics

    def _export(self, ctx: RunContext, parts: Parts[C], cfg: ExportConfig) -> dict[str, float]:
        """Export into ``<run>/model.<onnx|ts>`` with the outputs-match check; a missing exporter is only logged."""
        from mlcore.export import export_model

        suffix = ".onnx" if cfg.format == "onnx" else ".ts"
        try:
            result = export_model(
                parts.model, None, ctx.path(f"model{suffix}"), format=cfg.format, atol=cfg.atol, rtol=cfg.atol
            )
        except MlcoreError as exc:
            log.warning("export skipped: %s", exc)
            return {}
        parts.export = result
        ctx.write_json("export.json", {**attrs.asdict(result), "path": str(result.path), "summary": result.summary()})
        return {"export_ok": float(result.ok), "export_max_abs_diff": float(result.max_abs_diff)}


def _key(parts: Parts[Any], kind: str) -> tuple[str, Any]:
    return parts.components[kind]


def _plugin_of(kind: str, name: str, default: str) -> str:
    from mlcore.registry import get_registry

    try:
        return get_registry().get(kind, name).plugin or default
    except MlcoreError:
        return default


def _run_summary(ctx: RunContext, fit: FitResult) -> str:
    return (
        f"Profile `{ctx.profile}`, seed {ctx.seed}, device `{ctx.device}`. "
        f"Training: {fit.epochs_run} epochs ({fit.stopped_reason}), best epoch {fit.best_epoch} "
        f"({fit.monitor} {fit.best_metric:.6g}), {fit.train_seconds:.1f} s.\n\n"
        "Files: `config.toml`, `metrics.json`, `training_stats.json`, `checkpoints/best.pt`, `checkpoints/last.pt`."
    )


# --------------------------------------------------------------------------- the shape check


def _first_tensor(obj: Any) -> torch.Tensor | None:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, list | tuple) and obj and isinstance(obj[0], torch.Tensor):
        return obj[0]  # models returning (prediction, extras...) are scored on the prediction
    return None


def _keys_with(config: Any, value: int, table: str) -> list[str]:
    """``table.key=value`` for every integer field of ``config`` equal to ``value``."""
    if config is None or not attrs.has(type(config)):
        return []
    return [
        f"{table}.{f.name}={value}"
        for f in attrs.fields(type(config))
        if isinstance(getattr(config, f.name), int)
        and not isinstance(getattr(config, f.name), bool)
        and getattr(config, f.name) == value
    ]


def expected_prediction_shape(target: torch.Tensor) -> str:
    """How a prediction must be shaped for ``target``: the same, or ``(N, classes, ...)`` for class indices."""
    if target.dtype.is_floating_point or target.dtype.is_complex:
        return f"{tuple(target.shape)}"
    return f"(N, classes, {', '.join(str(s) for s in target.shape[1:])})".replace(", )", ")")


def shapes_match(prediction: torch.Tensor, target: torch.Tensor) -> bool:
    """Equal shapes; for integer (class index) targets, the prediction has one class axis after the batch."""
    if target.dtype.is_floating_point or target.dtype.is_complex:
        return tuple(prediction.shape) == tuple(target.shape)
    return prediction.dim() == target.dim() + 1 and tuple(prediction.shape[:1] + prediction.shape[2:]) == tuple(
        target.shape
    )


def check_prediction_shape(
    parts: Parts[Any], *, model_key: tuple[str, Any], dataset_key: tuple[str, Any], batch_size: int = 4
) -> None:
    """Run ``parts.model`` (CPU, eval mode, no gradients) on one training batch and compare shapes.

    Models with ``compute_loss`` own their targets and are only run, not compared. Raises
    :class:`ConfigError` in one line naming both shapes and the integer config keys whose value is
    a mismatched size (e.g. ``model.outputs=1``, ``dataset.horizon=2``).
    """
    import torch
    from torch.utils.data import DataLoader

    from mlcore.training.batches import split_inputs_targets

    data, model = parts.data, parts.model
    (model_name, model_cfg), (data_name, data_cfg) = model_key, dataset_key
    train = data.train_set()
    loader = DataLoader(train, batch_size=batch_size, shuffle=False, collate_fn=data.collate_fn)
    batch = next(iter(loader), None)
    if batch is None:
        raise ConfigError(f"dataset {data_name!r} has an empty training split (check the [dataset] table)")
    if callable(getattr(model, "compute_loss", None)) and not (isinstance(batch, list | tuple) and len(batch) == 2):
        return
    inputs, targets = split_inputs_targets(batch, f"dataset {data_name!r}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(inputs)
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        first = _first_tensor(inputs)
        shape = f" of shape {tuple(first.shape)}" if first is not None else ""
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"model {model_name!r} fails on a batch{shape} from dataset {data_name!r} ({msg}); "
            "check that the [model] sizes fit the [dataset]"
        ) from None
    finally:
        model.train(was_training)
    pred, target = _first_tensor(out), _first_tensor(targets)
    if pred is None or target is None or shapes_match(pred, target):
        return
    keys: list[str] = []
    if pred.dim() == target.dim():
        for i, (p, t) in enumerate(zip(pred.shape, target.shape)):
            if p != t and i > 0:
                keys += _keys_with(model_cfg, int(p), "model") + _keys_with(data_cfg, int(t), "dataset")
    behind = f"; config keys behind them: {', '.join(dict.fromkeys(keys))}" if keys else ""
    raise ConfigError(
        f"model {model_name!r} predicts shape {tuple(pred.shape)} but dataset {data_name!r} gives targets of shape "
        f"{tuple(target.shape)} (expected prediction {expected_prediction_shape(target)}){behind}"
    )
