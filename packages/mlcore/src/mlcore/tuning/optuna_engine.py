"""The Optuna engine of ``mlcore tune``: a study in ``<out>/study.db`` (SQLite), trials as runs.

Parallel trials are worker processes sharing the study; a killed study resumes from the database
(finished trials kept, the ones that were running re-queued).
"""

from __future__ import annotations

import logging
import signal
import time
import warnings
from pathlib import Path
from typing import Any

from mlcore.errors import ConfigError, MlcoreError, RunInterrupted
from mlcore.tuning.space import Param, SearchConfig
from mlcore.tuning.trial import TrialRecorder, TrialSetup, run_trial

log = logging.getLogger(__name__)

STUDY_NAME = "mlcore"
#: Seconds a stopping worker gets to finish its trial's checkpoint before it is killed.
STOP_TIMEOUT = 120.0
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


class TrialFailed(Exception):
    """A trial's run failed (its error is the trial's ``error`` attribute); the study goes on without it."""


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
        except (optuna.TrialPruned, ConfigError):  # pruned; a config mistake fails every trial: stop now
            raise
        except Exception as exc:  # this trial's own failure (diverged, out of memory): the study goes on
            text = str(exc).strip().splitlines()
            message = text[0] if isinstance(exc, MlcoreError) and text else f"{type(exc).__name__}: {''.join(text[:1])}"
            trial.set_user_attr("error", message)
            log.warning("trial %d failed: %s", trial.number, message)
            raise TrialFailed(message) from exc
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
            catch=(TrialFailed,),
            gc_after_trial=False,
        )


def _worker(setup: TrialSetup, worker: int, n_trials: int, level: int, parent_pid: int) -> None:
    """A parallel trial process (spawned): optimise the shared study until it has enough trials.

    It stops cleanly (its trial writes ``last.pt`` and is re-queued on resume) when the search
    process dies, however it dies, so no worker goes on writing into a study nobody watches.
    """
    import threading

    from mlcore._workers import watch_parent

    logging.basicConfig(level=level, format=f"[worker {worker}] %(message)s")
    threading.Thread(target=watch_parent, args=(parent_pid,), daemon=True).start()
    try:
        _optimize(setup, worker, n_trials)
    except MlcoreError as exc:
        logging.getLogger(__name__).error("error: %s", exc)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


class _SigtermAsInterrupt:
    """While active (main thread), SIGTERM raises KeyboardInterrupt and is remembered in ``received``."""

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = True
        raise KeyboardInterrupt

    def __enter__(self) -> _SigtermAsInterrupt:
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


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
        _check_some_trial_ran(study)
        return study
    import multiprocessing
    import os

    ctx = multiprocessing.get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    procs = [
        ctx.Process(target=_worker, args=(setup, i, remaining, level, os.getpid())) for i in range(min(jobs, remaining))
    ]
    with _SigtermAsInterrupt() as signals:
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            if signals.received:  # sent to this process alone (a scheduler, `timeout`): pass it on
                for p in procs:
                    if p.is_alive() and p.pid is not None:
                        os.kill(p.pid, signal.SIGTERM)
            # (Ctrl-C in a terminal reached the workers too: each stops after its checkpoint)
            for p in procs:
                p.join(timeout=STOP_TIMEOUT)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
            raise
    failed = [p.exitcode for p in procs if p.exitcode]
    if 130 in failed or -2 in failed:
        raise KeyboardInterrupt
    if failed:
        raise MlcoreError(
            f"{len(failed)} of {len(procs)} trial worker(s) failed (exit codes {failed}); see the log above"
        )
    _check_some_trial_ran(study)
    return study


def _check_some_trial_ran(study: Any) -> None:
    """Raise when every trial of the study failed (there is nothing to report), naming the first error."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    errors = [t.user_attrs["error"] for t in trials if t.state == TrialState.FAIL and "error" in t.user_attrs]
    if errors and finished_count(study) == 0:
        raise MlcoreError(f"every trial failed ({len(errors)}); the first: {errors[0]}")
