"""The Ray Tune engine of ``mlcore tune`` (``--engine ray``): the same ``[search]`` table on a local
Ray instance or a cluster (``--address``), with the ASHA or PBT scheduler and Optuna's or Ray's
own sampling. Each trial is an ``mlcore run`` under ``<out>/trials/<trial id>``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mlcore.errors import ConfigError, MlcoreError
from mlcore.tuning.results import TrialRow
from mlcore.tuning.space import Param, SearchConfig
from mlcore.tuning.trial import TrialRecorder, TrialSetup, run_trial

log = logging.getLogger(__name__)

SCHEDULERS = ("asha", "pbt", "fifo")
SEARCHERS = ("optuna", "random")
OBJECTIVE = "objective"  # the key every report carries: the per-epoch value, then the trial's value


def ray_domain(param: Param) -> Any:
    """The Ray Tune sampling domain of a parameter (Ray's own searcher and PBT's mutations)."""
    from ray import tune

    if param.type == "categorical":
        return tune.choice(list(param.choices))
    low, high = param.low, param.high
    assert low is not None and high is not None
    if param.type == "int":
        if param.log:
            return tune.lograndint(int(low), int(high) + 1)
        return tune.qrandint(int(low), int(high), int(param.step or 1))
    if param.log:
        return tune.loguniform(low, high)
    if param.step:
        return tune.quniform(low, high, param.step)
    return tune.uniform(low, high)


def active_params(search: SearchConfig, config: dict[str, Any]) -> dict[str, Any]:
    """The sampled values whose ``when`` conditions hold (Ray's own sampling draws every key)."""
    chosen: dict[str, Any] = {}
    for param in search.params:
        if param.key in config and param.active(chosen):
            chosen[param.key] = config[param.key]
    return chosen


def trainable(config: dict[str, Any], setup: TrialSetup, cwd: str, pbt: bool = False) -> None:
    """One Ray trial: run, report each epoch's ``report`` value as ``objective``, then the trial's value.

    Under PBT every report carries a checkpoint of the model's weights; a trial PBT restarts from
    another's checkpoint begins a new run (``trials/<id>-<n>``) from those weights, with the
    perturbed hyperparameters and the epochs left of ``trainer.epochs``.
    """
    from ray import tune

    os.chdir(cwd)  # relative paths of the config mean what they meant where `mlcore tune` ran
    params = active_params(setup.search, config)
    trial_id = tune.get_context().get_trial_id() or "trial"
    run_name = trial_id
    done = 0  # epochs this trial's lineage already trained (PBT)
    extra: dict[str, Any] = {}
    if pbt:
        done, run_name, extra = _pbt_start(setup, params, trial_id)

    def forward(value: float, step: int) -> None:
        metrics = {OBJECTIVE: value, "epoch": done + step, "final": False}
        if not pbt:
            tune.report(metrics)
            return
        _pbt_report(metrics, done + step)

    recorder = TrialRecorder(setup.search, forward)
    value, _ = run_trial(setup, {**params, **extra}, setup.out_dir / "trials" / run_name, recorder)
    tune.report({OBJECTIVE: value, "epoch": done + recorder.epochs, "final": True, "run_dir": f"trials/{run_name}"})


def _pbt_start(setup: TrialSetup, params: dict[str, Any], trial_id: str) -> tuple[int, str, dict[str, Any]]:
    """Under PBT: the epochs done, the run directory name and extra overrides (the epochs left)."""
    import json

    import torch
    from ray import tune

    from mlcore.tuning.reporting import warm_start

    epochs = _epoch_budget(setup)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        warm_start(None)
        return 0, trial_id, {}
    with checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / "model.pt", weights_only=True)
        done = int(json.loads((Path(folder) / "pbt.json").read_text())["epoch"])
    warm_start(state)
    n = 1
    while (setup.out_dir / "trials" / f"{trial_id}-{n}").exists():
        n += 1
    return done, f"{trial_id}-{n}", {"trainer.epochs": max(1, epochs - done)}


def _epoch_budget(setup: TrialSetup) -> int:
    """``trainer.epochs`` of the base config (PBT needs the core trainer)."""
    config = setup.resolve({}).config
    epochs = getattr(getattr(getattr(config, "trainer", None), "config", None), "epochs", None)
    if not isinstance(epochs, int):
        raise ConfigError("--scheduler pbt needs a pipeline trained by the core trainer (trainer.epochs)")
    return epochs


def _pbt_report(metrics: dict[str, Any], epoch: int) -> None:
    """Report with a checkpoint of the current model's weights (what PBT copies to weaker trials)."""
    import json
    import tempfile

    import torch
    from ray import tune
    from ray.tune import Checkpoint

    from mlcore.tuning.reporting import current_trainer

    trainer = current_trainer()
    if trainer is None:  # not the core trainer: report without weights
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="mlcore-pbt-") as folder:
        torch.save(trainer.model.state_dict(), Path(folder) / "model.pt")
        (Path(folder) / "pbt.json").write_text(json.dumps({"epoch": epoch}))
        tune.report(metrics, checkpoint=Checkpoint.from_directory(folder))


def _scheduler(name: str, search: SearchConfig, mode: str) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    if name == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",
            grace_period=max(1, search.warmup_epochs),
            reduction_factor=3,
            metric=OBJECTIVE,
            mode=mode,
        )
    if name == "pbt":
        mutations = {p.key: ray_domain(p) for p in search.params if not p.when}
        if not mutations:
            raise ConfigError("--scheduler pbt: needs a searched key without `when` to perturb")
        return PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=max(1, search.warmup_epochs),
            hyperparam_mutations=mutations,
            metric=OBJECTIVE,
            mode=mode,
        )
    return FIFOScheduler()


def _searcher(name: str, search: SearchConfig, mode: str) -> Any:
    if name == "random":
        return None
    from ray.tune.search.optuna import OptunaSearch

    from mlcore.tuning.optuna_engine import make_sampler

    return OptunaSearch(space=DefineByRun(search), metric=OBJECTIVE, mode=mode, sampler=make_sampler(search))


class DefineByRun:
    """Optuna's define-by-run space for Ray's OptunaSearch (picklable): conditional keys drawn only when active."""

    def __init__(self, search: SearchConfig) -> None:
        self.search = search

    def __call__(self, trial: Any) -> None:
        """Draw every active parameter from the Optuna trial."""
        from mlcore.tuning.optuna_engine import suggest

        self.search.sample(lambda p: suggest(trial, p))


def rows_from_results(results: Any, search: SearchConfig, budget: int = 0) -> list[TrialRow]:
    """Every Ray trial as a :class:`TrialRow` (stopped by the scheduler before its last report = pruned).

    ``budget``: under PBT, a trial whose lineage trained this many epochs is complete (Ray stops it
    at its last per-epoch report; its value is that report's).
    """
    rows = []
    for i, res in enumerate(results):
        metrics = dict(res.metrics or {})
        config = dict(res.config or {})
        if res.error is not None:
            state = "fail"
        elif metrics.get("final") or (budget and int(metrics.get("epoch", 0) or 0) >= budget):
            state = "complete"
        else:
            state = "pruned"
        rows.append(
            TrialRow(
                number=i,
                state=state,
                value=float(metrics[OBJECTIVE]) if state == "complete" else None,
                epochs=int(metrics.get("epoch", 0) or 0),
                seconds=float(metrics.get("time_total_s", 0.0) or 0.0),
                params=active_params(search, config),
                run_dir=str(metrics.get("run_dir") or f"trials/{metrics.get('trial_id', '')}"),
            )
        )
    return rows


def study_from_rows(rows: list[TrialRow], search: SearchConfig) -> Any:
    """An in-memory Optuna study holding the Ray trials, for the same plots as the Optuna engine."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    def distribution(p: Param) -> Any:
        if p.type == "categorical":
            return CategoricalDistribution(list(p.choices))
        if p.type == "int":
            return IntDistribution(int(p.low), int(p.high), log=p.log, step=1 if p.log else int(p.step or 1))  # type: ignore[arg-type]
        return FloatDistribution(float(p.low), float(p.high), log=p.log, step=None if p.log else p.step)  # type: ignore[arg-type]

    dists = {p.key: distribution(p) for p in search.params}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=search.direction)  # type: ignore[arg-type]
    for row in rows:
        if row.state not in ("complete", "pruned"):
            continue
        params = {k: v for k, v in row.params.items() if k in dists}
        state = optuna.trial.TrialState.COMPLETE if row.state == "complete" else optuna.trial.TrialState.PRUNED
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                value=row.value if row.state == "complete" else None,
                state=state,
            )
        )
    return study


def run_ray(
    setup: TrialSetup,
    *,
    scheduler: str = "asha",
    searcher: str = "optuna",
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    address: str | None = None,
) -> tuple[list[TrialRow], Any, list[str]]:
    """Run the search on Ray Tune; returns (trial rows, an Optuna study of them for the plots, notes)."""
    import ray
    from ray import tune

    if scheduler not in SCHEDULERS:
        raise ConfigError(f"--scheduler {scheduler!r}: must be one of {', '.join(SCHEDULERS)}")
    if searcher not in SEARCHERS:
        raise ConfigError(f"--searcher {searcher!r}: must be one of {', '.join(SEARCHERS)}")
    if cpus_per_trial <= 0 and gpus_per_trial <= 0:
        raise ConfigError("--cpus-per-trial and --gpus-per-trial are both 0: a trial needs some resource")
    search = setup.search
    mode = "min" if search.direction == "minimize" else "max"
    if scheduler == "pbt" and searcher == "optuna":
        searcher = "random"  # PBT explores by perturbing; it does not combine with a searcher
    budget = _epoch_budget(setup) if scheduler == "pbt" else 0
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise MlcoreError(
                f"cannot start or reach Ray ({'--address ' + address if address else 'local'}): {exc}"
            ) from None
    try:
        storage = setup.out_dir / "ray"
        fn = tune.with_resources(
            tune.with_parameters(trainable, setup=setup, cwd=os.getcwd(), pbt=scheduler == "pbt"),
            {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
        )
        param_space = {p.key: ray_domain(p) for p in search.params} if searcher == "random" else {}
        experiment = storage / "study"
        if experiment.exists() and tune.Tuner.can_restore(str(experiment)):
            log.info("resuming the Ray study in %s", experiment)
            tuner = tune.Tuner.restore(str(experiment), trainable=fn, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                fn,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    num_samples=search.trials,
                    scheduler=_scheduler(scheduler, search, mode),
                    search_alg=_searcher(searcher, search, mode),
                ),
                run_config=tune.RunConfig(
                    name="study",
                    storage_path=str(Path(storage).resolve()),
                    verbose=0,
                    stop={"epoch": budget} if budget else None,  # PBT: a lineage ends after trainer.epochs
                ),
            )
        results = tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    rows = rows_from_results(results, search, budget)
    failed = [r for r in rows if r.state == "fail"]
    if failed and len(failed) == len(rows):
        first = next(iter(results)).error
        last_line = str(first).strip().splitlines()[-1] if first else "?"
        raise MlcoreError(f"every Ray trial failed; the first: {last_line}")
    notes = [
        f"Ray Tune: scheduler {scheduler}, searcher {searcher}, "
        f"{cpus_per_trial:g} CPU / {gpus_per_trial:g} GPU per trial"
        + (f", cluster {address}" if address else ", local Ray instance"),
        "Trials the scheduler stopped early count as pruned.",
    ]
    if scheduler == "pbt":
        notes.append(
            "PBT: every perturbation interval the weaker trials continue from a stronger trial's weights with "
            "perturbed hyperparameters (a new run directory `trials/<id>-<n>` each time). A PBT trial's best "
            "config holds its final hyperparameters; one `mlcore run` of it does not replay the schedule."
        )
    return rows, study_from_rows(rows, search), notes
