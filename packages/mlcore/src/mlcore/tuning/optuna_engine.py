"""The Optuna engine of ``mlcore tune``: a study in ``<out>/study.db`` (SQLite), trials as runs.

Parallel trials are worker processes sharing the study; a killed study resumes from the database
(finished trials kept, the ones that were running re-queued).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from mlcore.errors import MlcoreError, RunInterrupted
from mlcore.tuning.space import Param, SearchConfig
from mlcore.tuning.trial import TrialRecorder, TrialSetup, run_trial

log = logging.getLogger(__name__)

STUDY_NAME = "mlcore"
STUDY_FILE = "study.db"


def storage_url(out_dir: Path) -> str:
    """``sqlite:///<out>/study.db`` (absolute, so worker processes find the same file)."""
    return f"sqlite:///{(out_dir / STUDY_FILE).resolve()}"


def make_sampler(search: SearchConfig, worker: int = 0) -> Any:
    """The Optuna sampler of ``search.sampler``; worker ``i`` of a parallel search seeds it with ``seed + i``."""
    import optuna

    seed = search.seed + worker
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "grid":
        return optuna.samplers.GridSampler(search.grid(), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=search.startup_trials)


def make_pruner(search: SearchConfig) -> Any:
    """The Optuna pruner of ``search.pruner`` (``none``: never prunes)."""
    import optuna

    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials, n_warmup_steps=search.warmup_epochs)
    if search.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, search.warmup_epochs))
    return optuna.pruners.NopPruner()


def storage(out_dir: Path) -> Any:
    """The study's SQLite storage, with a generous lock timeout for parallel workers."""
    import optuna

    return optuna.storages.RDBStorage(storage_url(out_dir), engine_kwargs={"connect_args": {"timeout": 120}})


def load_study(out_dir: Path, search: SearchConfig, worker: int = 0) -> Any:
    """Create the study in ``out_dir``, or load it when it exists."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage(out_dir),
        direction=search.direction,  # type: ignore[arg-type]
        sampler=make_sampler(search, worker),
        pruner=make_pruner(search),
        load_if_exists=True,
    )


def suggest(trial: Any, param: Param) -> Any:
    """Draw ``param`` from an Optuna trial."""
    if param.type == "categorical":
        return trial.suggest_categorical(param.key, list(param.choices))
    assert param.low is not None and param.high is not None
    if param.type == "int":
        return trial.suggest_int(param.key, int(param.low), int(param.high), step=int(param.step or 1), log=param.log)
    return trial.suggest_float(param.key, float(param.low), float(param.high), step=param.step, log=param.log)


def finished_count(study: Any) -> int:
    """Complete and pruned trials (failed ones do not count towards ``search.trials``)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def recover(study: Any) -> list[int]:
    """Mark trials left running by a killed study failed and re-queue their parameters (and those of
    trials stopped by Ctrl-C/SIGTERM) once; returns the numbers re-queued."""
    from optuna.trial import TrialState

    requeued = set(study.user_attrs.get("requeued", []))
    again = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        elif not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted")):
            continue
        if t.number not in requeued and t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            requeued.add(t.number)
            again.append(t.number)
    study.set_user_attr("requeued", sorted(requeued))
    return again


class Objective:
    """The function Optuna optimises: one ``mlcore run`` per trial under ``<out>/trials/NNNN``."""

    def __init__(self, setup: TrialSetup) -> None:
        self.setup = setup

    def __call__(self, trial: Any) -> float:
        """Sample, run, report per epoch (pruning raises ``optuna.TrialPruned``), return the value."""
        import optuna

        search = self.setup.search
        params = search.sample(lambda p: suggest(trial, p))
        run_dir = self.setup.out_dir / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir.relative_to(self.setup.out_dir)))
        started = time.perf_counter()

        def forward(value: float, step: int) -> None:
            trial.report(value, step)
            if trial.should_prune():
                trial.set_user_attr("epochs", step)
                trial.set_user_attr("seconds", time.perf_counter() - started)
                log.info("trial %d pruned at epoch %d (%s=%.4g)", trial.number, step, search.report_key, value)
                raise optuna.TrialPruned(f"pruned at epoch {step}")

        recorder = TrialRecorder(search, forward)
        log.info("trial %d: %s", trial.number, ", ".join(f"{k}={v!r}" for k, v in params.items()))
        try:
            value, _ = run_trial(self.setup, params, run_dir, recorder)
        except (RunInterrupted, KeyboardInterrupt):
            trial.set_user_attr("interrupted", True)
            raise
        finally:
            trial.set_user_attr("epochs", recorder.epochs)
            trial.set_user_attr("seconds", time.perf_counter() - started)
        log.info("trial %d: %s=%.6g after %d epoch(s)", trial.number, search.metric, value, recorder.epochs)
        return value


def _optimize(setup: TrialSetup, worker: int, n_trials: int) -> None:
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study = load_study(setup.out_dir, setup.search, worker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(
            Objective(setup),
            n_trials=n_trials,
            callbacks=[MaxTrialsCallback(setup.search.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))],
            gc_after_trial=False,
        )


def _worker(setup: TrialSetup, worker: int, n_trials: int, level: int) -> None:
    """A parallel trial process (spawned): optimise the shared study until it has enough trials."""
    logging.basicConfig(level=level, format=f"[worker {worker}] %(message)s")
    try:
        _optimize(setup, worker, n_trials)
    except MlcoreError as exc:
        logging.getLogger(__name__).error("error: %s", exc)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def optimize(setup: TrialSetup, jobs: int) -> Any:
    """Run the study in ``setup.out_dir`` until it holds ``search.trials`` finished trials; returns it."""
    study = load_study(setup.out_dir, setup.search)
    again = recover(study)
    done = finished_count(study)
    if done or again:
        log.info(
            "resuming the study in %s: %d finished trial(s) kept, re-queued %s", setup.out_dir, done, again or "none"
        )
    remaining = setup.search.trials - done
    if remaining <= 0:
        log.info("the study already holds %d finished trial(s)", done)
        return study
    if jobs <= 1:
        _optimize(setup, 0, remaining)
        return study
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    procs = [ctx.Process(target=_worker, args=(setup, i, remaining, level)) for i in range(min(jobs, remaining))]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        raise
    failed = [p.exitcode for p in procs if p.exitcode]
    if 130 in failed or -2 in failed:
        raise KeyboardInterrupt
    if failed:
        raise MlcoreError(
            f"{len(failed)} of {len(procs)} trial worker(s) failed (exit codes {failed}); see the log above"
        )
    return study
