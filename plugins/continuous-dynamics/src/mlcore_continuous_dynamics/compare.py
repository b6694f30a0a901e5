"""The ``compare`` pipeline (the plugin's default): all five models on the same episodes, one comparison.

``mlcore run --plugin continuous-dynamics [--profile quick|full]``:

1. simulate the episodes once into ``<run>/data/`` (every model reads the same files);
2. train each model with ``train-one`` as a job of :mod:`mlcore.parallel` — the fast group
   (``linear_dynamics``, ``gru_dynamics``) side by side, the heavy group (``lstm_predictor``,
   ``neural_ode``, ``vae_rnn_hybrid``) one at a time — each into ``<run>/models/<model>/``; as each
   finishes, ``<run>/<model>_training_results.json`` and ``<run>/checkpoints/<model>_best.pt`` appear;
3. the weather ablation: the ablation model retrained with each listed factor withheld, next to the
   permutation importance every model's evaluation measures;
4. ``comparison.json`` and ``report.md``: one table with the persistence baseline and the
   simulator's true model as reference rows, per-group errors, the rollout error curve H = 1..50,
   training time, parameters and epochs to best, plus plots.

A model that fails is reported with its error; the others' results are kept.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import attrs

from mlcore.config import in_range, unstructure
from mlcore.errors import ConfigError
from mlcore.io import atomic_write, atomic_write_json, read_json
from mlcore.pipelines import Pipeline, RunContext
from mlcore.training import TrainerConfig
from mlcore_continuous_dynamics.configs import DynamicsEvaluatorConfig, VehicleEpisodesConfig
from mlcore_continuous_dynamics.pipeline import standard_trainer
from mlcore_continuous_dynamics.sim import STATE_GROUPS, WEATHER_FACTORS

log = logging.getLogger(__name__)

__all__ = ["AblationConfig", "CompareConfig", "ComparePipeline", "ParallelConfig", "RunJob"]

PLUGIN = "continuous-dynamics"
MODELS = ("linear_dynamics", "gru_dynamics", "lstm_predictor", "neural_ode", "vae_rnn_hybrid")


def _plan_settings() -> dict[str, dict[str, Any]]:
    """The original plan's per-model adjustments to the standard config."""
    return {
        "linear_dynamics": {"trainer": {"epochs": 30}},
        "gru_dynamics": {"trainer": {"epochs": 40}, "model": {"hidden_dim": 96}},
        "lstm_predictor": {"trainer": {"epochs": 60}, "model": {"hidden_dim": 128}},
        "neural_ode": {"trainer": {"epochs": 80, "lr": 5e-4, "batch_size": 16}, "model": {"hidden_dim": 128}},
        "vae_rnn_hybrid": {"trainer": {"epochs": 70, "lr": 5e-4}, "model": {"hidden_dim": 64}},
    }


def _models(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    bad = [v for v in value if v not in MODELS] if isinstance(value, list) else [value]
    if bad or not value or len(set(value)) != len(value):
        raise ValueError(f"{attribute.name}={value!r} must list distinct models among: {', '.join(MODELS)}")


def _settings(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if not isinstance(value, dict):
        raise ValueError(f"{attribute.name} must be a table of model names")
    for name, table in value.items():
        if name not in MODELS:
            raise ValueError(f"{attribute.name}.{name} is not a model (allowed: {', '.join(MODELS)})")
        if not isinstance(table, dict) or not set(table) <= {"trainer", "model"}:
            raise ValueError(f"{attribute.name}.{name} may only hold [trainer] and [model] tables")


@attrs.define
class ParallelConfig:
    """How the models are scheduled.

    Attributes:
        fast: models trained side by side (the rest run one at a time, after them).
        max_parallel: how many fast models run at once.
        processes: run each model in its own process (:mod:`mlcore.parallel`); ``false`` runs them
            one after another in this process.
    """

    fast: list[str] = attrs.field(factory=lambda: ["linear_dynamics", "gru_dynamics"], validator=_models)
    max_parallel: int = attrs.field(default=2, validator=in_range(1, 64))
    processes: bool = True


@attrs.define
class AblationConfig:
    """The weather ablation.

    Attributes:
        enabled: run it.
        model: the model retrained without the weather factors.
        withhold: what each retraining hides from the model: a factor (wind, density, temperature, rain) or ``all``.
    """

    enabled: bool = True
    model: str = attrs.field(default="gru_dynamics", validator=lambda i, a, v: _models(i, a, [v]))
    withhold: list[str] = attrs.field(factory=lambda: ["all"])

    @withhold.validator
    def _check(self, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
        allowed = ["all", *WEATHER_FACTORS]
        if not isinstance(value, list) or any(v not in allowed for v in value):
            raise ValueError(f"withhold={value!r} is not allowed (a list of: {', '.join(allowed)})")


@attrs.define
class CompareConfig:
    """Config of ``compare``.

    Attributes:
        dataset: the episodes, simulated once into ``<run>/data`` (or read from ``dataset.path``).
        models: which of the five to train.
        trainer: the standard training settings every model starts from.
        model_settings: per-model adjustments (``[model_settings.neural_ode.trainer] lr = 5e-4``).
        epochs_scale: multiplies every model's epochs (the ``quick`` profile shortens all runs with it).
        evaluator: the ``dynamics`` evaluator (rollout horizon, windows, permutation importance).
        parallel: the scheduling of the training runs.
        ablation: the weather ablation.
    """

    dataset: VehicleEpisodesConfig = attrs.field(factory=VehicleEpisodesConfig)
    models: list[str] = attrs.field(factory=lambda: list(MODELS), validator=_models)
    trainer: TrainerConfig = attrs.field(factory=standard_trainer)
    model_settings: dict[str, Any] = attrs.field(factory=_plan_settings, validator=_settings)
    epochs_scale: float = attrs.field(default=1.0, validator=in_range(0.0, 100.0, low_open=True))
    evaluator: DynamicsEvaluatorConfig = attrs.field(factory=DynamicsEvaluatorConfig)
    parallel: ParallelConfig = attrs.field(factory=ParallelConfig)
    ablation: AblationConfig = attrs.field(factory=AblationConfig)


@attrs.frozen
class RunJob:
    """One training run of the comparison (a job of :mod:`mlcore.parallel` or run in this process)."""

    name: str
    model: str
    out: Path
    config: dict[str, Any]
    group: str


class ComparePipeline(Pipeline):
    """Train the five models on identical data, with references and the weather ablation; compare."""

    config: CompareConfig

    def __init__(self, config: CompareConfig | None = None) -> None:
        super().__init__(config or CompareConfig())

    # ------------------------------------------------------------------ plan
    def jobs(self, ctx: RunContext, data_path: str) -> list[RunJob]:
        """One job per model (and per ablation variant), with its full ``train-one`` config."""
        cfg = self.config
        out: list[RunJob] = []
        for model in cfg.models:
            group = "fast" if model in cfg.parallel.fast else "heavy"
            out.append(
                RunJob(model, model, ctx.out_dir / "models" / model, self.job_config(ctx, model, data_path), group)
            )
        if cfg.ablation.enabled:
            for hidden in cfg.ablation.withhold:
                factors = list(WEATHER_FACTORS) if hidden == "all" else [hidden]
                name = f"{cfg.ablation.model}-without-{hidden}"
                doc = self.job_config(ctx, cfg.ablation.model, data_path, withhold=factors)
                group = "fast" if cfg.ablation.model in cfg.parallel.fast else "heavy"
                out.append(RunJob(name, cfg.ablation.model, ctx.out_dir / "ablation" / name, doc, group))
        order = {"fast": 0, "heavy": 1}
        return sorted(out, key=lambda j: order[j.group])  # groups run in order of first appearance

    def job_config(
        self, ctx: RunContext, model: str, data_path: str, withhold: list[str] | None = None
    ) -> dict[str, Any]:
        """The ``train-one`` document of one model: the standard settings + its adjustments."""
        cfg = self.config
        settings = cfg.model_settings.get(model, {})
        trainer = {**unstructure(cfg.trainer), **settings.get("trainer", {})}
        trainer["epochs"] = max(1, round(trainer["epochs"] * cfg.epochs_scale))
        dataset = {**unstructure(cfg.dataset), "path": data_path, "withhold": withhold or []}
        evaluator = unstructure(cfg.evaluator)
        if withhold:
            evaluator["permutation"] = False
        return {
            "run": {"seed": ctx.seed, "device": str(ctx.device)},
            "dataset": dataset,
            "model": {"name": model, **settings.get("model", {})},
            "trainer": trainer,
            "evaluator": evaluator,
        }

    def check(self, ctx: RunContext) -> None:
        """Every job's config resolves (a bad per-model setting is one line naming it) before anything runs."""
        from mlcore.api import resolve

        for job in self.jobs(ctx, self.config.dataset.path or "unset"):
            doc = {k: v for k, v in job.config.items() if k != "run"}
            try:
                resolve(PLUGIN, pipeline="train-one", config=doc)
            except ConfigError as exc:
                raise ConfigError(f"model_settings.{job.model}: {exc}") from None
        if self.config.ablation.enabled and self.config.ablation.model not in self.config.models:
            log.info("ablation model %s is trained for the ablation only", self.config.ablation.model)

    # ------------------------------------------------------------------ run
    def run(self, ctx: RunContext) -> dict[str, Any]:
        from mlcore_continuous_dynamics.report import comparison_rows, write_comparison

        cfg = self.config
        data_path = self._data(ctx)
        jobs = self.jobs(ctx, data_path)
        start = time.perf_counter()
        results = self._train(ctx, jobs)
        wall = time.perf_counter() - start
        references = self._references(ctx, data_path)
        rows, ablation = comparison_rows(ctx, cfg, jobs, results, references)
        summary = write_comparison(ctx, cfg, rows, ablation, references, results, wall)
        return summary

    def _data(self, ctx: RunContext) -> str:
        """The episodes every model reads: ``dataset.path``, or simulated once into ``<run>/data``."""
        from mlcore_continuous_dynamics.data import DATA_FILE, VehicleEpisodes

        cfg = self.config.dataset
        if cfg.path:
            return str(Path(cfg.path).resolve())
        target = ctx.out_dir / "data"
        if not (target / DATA_FILE).is_file():  # a resumed run keeps its data
            VehicleEpisodes(cfg).generate(target)
        return str(target.resolve())

    def _references(self, ctx: RunContext, data_path: str) -> dict[str, dict[str, Any]]:
        """Persistence and the true model scored like the models (same test and rollout windows)."""
        import torch

        from mlcore.evaluation.rollout import group_errors, horizon_errors
        from mlcore_continuous_dynamics.data import VehicleEpisodes
        from mlcore_continuous_dynamics.evaluation import reference_rollouts, rollout_windows

        cfg = self.config
        data = VehicleEpisodes(attrs.evolve(cfg.dataset, path=data_path, withhold=[])).prepare()
        test = data.windows("test", 1)
        targets = torch.stack([test[i][1] for i in range(len(test))])
        one_step = reference_rollouts(data, test)
        horizon = min(cfg.evaluator.horizon, cfg.dataset.horizon)
        windows = rollout_windows(data, horizon, cfg.evaluator.max_rollout_windows)
        roll_targets = torch.stack([windows[i][1] for i in range(len(windows))])
        rollouts = reference_rollouts(data, windows)
        out: dict[str, dict[str, Any]] = {}
        for name in one_step:
            pred = one_step[name][:, 0]
            out[name] = {
                "mse": (pred.double() - targets.double()).pow(2).mean().item(),
                "groups": group_errors(pred, targets, STATE_GROUPS),
                "curve": horizon_errors(rollouts[name], roll_targets).tolist(),
            }
        return out

    def _train(self, ctx: RunContext, jobs: list[RunJob]) -> dict[str, dict[str, Any]]:
        """Run the jobs; returns ``{job name: {status, error, wall_time, metrics, run_dir}}``."""
        results: dict[str, dict[str, Any]] = {}

        def finished(name: str, status: str, run_dir: Path, wall: float, error: str | None, metrics: dict) -> None:
            record = {
                "model": next(j.model for j in jobs if j.name == name),
                "status": status,
                "error": error,
                "wall_time": wall,
                "run_dir": str(run_dir),
                "metrics": metrics,
            }
            results[name] = record
            if name in self.config.models:
                atomic_write_json(ctx.out_dir / f"{name}_training_results.json", record)
                best = Path(run_dir) / "checkpoints" / "best.pt"
                if best.is_file():
                    target = ctx.out_dir / "checkpoints" / f"{name}_best.pt"
                    atomic_write(target, lambda fh: shutil.copyfileobj(best.open("rb"), fh))
            log.info("%s: %s in %.1f s%s", name, status, wall, f" ({error})" if error else "")

        parallel = _parallel_module() if self.config.parallel.processes else None
        if parallel is not None:
            core_jobs = [
                parallel.Job(
                    name=j.name,
                    plugin=PLUGIN,
                    out=j.out,
                    pipeline="train-one",
                    profile="full",
                    config=j.config,
                    group=j.group,
                )
                for j in jobs
            ]
            import torch

            parallel.run_jobs(
                core_jobs,
                max_parallel={"fast": self.config.parallel.max_parallel, "heavy": 1},
                threads=torch.get_num_threads(),  # the run's thread setting, divided between running jobs
                progress=ctx.progress,
                on_finish=lambda r: finished(r.name, r.status, r.run_dir, r.wall_time, r.error, dict(r.metrics)),
            )
        else:
            if self.config.parallel.processes:
                log.warning("mlcore.parallel is not available: training the models one after another in this process")
            for job in jobs:
                finished(*_run_here(job, ctx.progress))
        stopped = [name for name, r in results.items() if r["status"] == "interrupted"]
        if stopped:
            from mlcore.errors import RunInterrupted

            raise RunInterrupted(
                f"interrupted: {', '.join(stopped)} stopped; run the same command to resume", run_dir=str(ctx.out_dir)
            )
        return results


def _parallel_module() -> Any:
    try:
        import mlcore.parallel as parallel
    except ImportError:
        return None
    return parallel


def _run_here(job: RunJob, progress: bool) -> tuple[str, str, Path, float, str | None, dict[str, Any]]:
    """The sequential fallback: ``mlcore.api.run`` in this process; a failure is recorded, not raised."""
    from mlcore import api
    from mlcore.errors import MlcoreError, RunInterrupted

    start = time.perf_counter()
    try:
        result = api.run(
            PLUGIN, pipeline="train-one", profile="full", config=job.config, out=job.out, progress=progress
        )
    except RunInterrupted:
        raise
    except (MlcoreError, RuntimeError, ValueError) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return job.name, "failed", job.out, time.perf_counter() - start, line, {}
    return job.name, "completed", job.out, time.perf_counter() - start, None, dict(result.metrics)


def read_curve(run_dir: str | Path) -> dict[str, Any] | None:
    """A job's ``rollout_curve.json``, or ``None``."""
    path = Path(run_dir) / "rollout_curve.json"
    return read_json(path) if path.is_file() else None
