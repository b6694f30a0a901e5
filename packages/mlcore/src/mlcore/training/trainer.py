"""The generic supervised trainer the plugins reuse: a conductor of the modules beside it.

Example::

    from mlcore.training import Trainer, TrainerConfig
    from mlcore.training.checkpoint import make_meta

    trainer = Trainer(TrainerConfig(epochs=20, lr=3e-3, patience=5), device="auto", seed=0)
    meta = make_meta(plugin="my-plugin", components={"model": ("mlp", model_cfg)}, data=data)
    result = trainer.fit(model, data, torch.nn.MSELoss(), run_dir="runs/demo", meta=meta)
    print(result.best_metric, result.stopped_reason)   # the model now holds the best weights

``fit`` sets up (device and ranks: ``_distributed``; loaders: ``_loaders``; the step loop:
``_loop``), runs the epochs, and finishes; the run files (checkpoint state, saving, resuming,
``training_stats.json``) are ``_run_files``, the result type ``result``.

Loss contract: see :mod:`mlcore.training.batches` (``model.compute_loss(batch, loss_fn)`` when the
model defines it, else ``loss_fn(model(inputs), targets)``; extra values are logged per epoch).

Reproducibility: the training order of epoch ``e`` depends only on ``(seed, e)`` (see
:func:`shuffle_seed`) and ``last.pt`` stores all RNG states, so a run interrupted and resumed ends
bitwise-equal to an uninterrupted one on CPU.

Stopping: ``stopped_reason`` is ``completed``, ``early_stopping`` or ``time_limit`` (the next epoch
would not fit in ``max_time_minutes``, or the limit was hit mid-epoch: the partial epoch is dropped).
Ctrl-C and SIGTERM (main thread only; previous handlers restored) let the step in progress finish,
drop the partial epoch, wait for the pending checkpoint write, record ``interrupted`` with exactly
the epochs ``last.pt`` holds and raise :class:`~mlcore.errors.RunInterrupted`; running again into the
same directory resumes bit-exactly. A second Ctrl-C stops at once (same files).

Files (rank 0 only; docs/architecture.md "Training: checkpoints, interrupts, what is atomic"):
``checkpoints/last.pt`` every epoch, ``checkpoints/best.pt`` (a link to, or copy of, it) on improvement,
``training_stats.json`` (``running`` while alive, written after the checkpoint it describes, at most
every ``_run_files.STATS_EVERY_SECONDS``, and the stop reason or ``error`` at the end), ``training_curves.png``,
``tensorboard/``. A checkpoint that cannot be written is a one-line
:class:`~mlcore.errors.CheckpointError`, and the stats then describe the last checkpoint on disk.

Distributed: under ``torchrun`` the trainer joins the process group, shards the training set, wraps
the model in ``DistributedDataParallel`` and lets only rank 0 write files.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlcore.config import unstructure
from mlcore.errors import ConfigError, MlcoreError, RunInterrupted
from mlcore.training._distributed import DistInfo, any_rank, setup_distributed, teardown_distributed
from mlcore.training._interrupts import InterruptGuard
from mlcore.training._loaders import Loaders, build_loaders, shuffle_seed
from mlcore.training._loop import StepLoop, StopRequested, TimeUp, amp_setup, epoch_line, epoch_scalars, overruns
from mlcore.training._run_files import (
    RunFiles,
    callback_keys,
    callback_states,
    resume_from,
    training_state,
    training_stats,
)
from mlcore.training.callbacks import Callback, EarlyStopping, build_callbacks
from mlcore.training.checkpoint import load_model_state, plain_values
from mlcore.training.config import TrainerConfig, callback_entry
from mlcore.training.optim import EpochScheduler, build_optimizer, build_scheduler
from mlcore.training.result import STOP_REASONS, FitResult, StatsReason, StopReason
from mlcore.training.tracking import Tracker, start_trackers

__all__ = ["FitResult", "StopReason", "Trainer", "TrainerConfig", "shuffle_seed"]

log = logging.getLogger(__name__)


class Trainer:
    """Generic supervised training loop (see the module docstring for the contract).

    Args:
        config: the :class:`TrainerConfig` (defaults when ``None``).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``mps`` or a ``torch.device``.
        seed: seeds Python, NumPy and torch at the start of :meth:`fit` and the data order.
        callbacks: callback instances, run after those named in ``config.callbacks``.
        progress: overrides ``config.progress`` when not ``None``.

    While :meth:`fit` runs, callbacks can read what :class:`~mlcore.training.callbacks.TrainerView`
    lists and set ``should_stop``.
    """

    def __init__(
        self,
        config: TrainerConfig | None = None,
        *,
        device: str | torch.device = "auto",
        seed: int = 0,
        callbacks: Sequence[Callback] = (),
        progress: bool | None = None,
    ) -> None:
        self.config = config if config is not None else TrainerConfig()
        if not isinstance(self.config, TrainerConfig):
            raise ConfigError(f"trainer config must be a TrainerConfig, got {type(self.config).__name__}")
        self.device_name = device
        self.seed = int(seed)
        self.extra_callbacks = list(callbacks)
        self.progress = self.config.progress if progress is None else bool(progress)
        # run state, readable by callbacks
        self.model: nn.Module = None  # type: ignore[assignment]
        self.optimizer: torch.optim.Optimizer = None  # type: ignore[assignment]
        self.scheduler: EpochScheduler = None  # type: ignore[assignment]
        self.scaler: Any = None
        self.device: torch.device = torch.device("cpu")
        self.run_dir: Path = Path(".")
        self.callbacks: list[Callback] = []
        self.trackers: list[Tracker] = []
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.monitor = self.config.monitor
        self.best_metric = math.inf
        self.best_epoch = 0
        self.should_stop = False
        self.stop_reason = ""
        self.dist = DistInfo()
        self._steps: StepLoop | None = None
        self._resumed_step = 0
        self._best_state: dict[str, torch.Tensor] | None = None
        self._files: RunFiles | None = None
        self._callback_keys: list[str] = []
        self._guard = InterruptGuard()

    # ----------------------------------------------------------------- what callbacks use
    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far (all sessions)."""
        return self._steps.global_step if self._steps is not None else self._resumed_step

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0, or not distributed)."""
        return self.dist.is_main

    def log_scalars(self, values: Mapping[str, float | None], step: int) -> None:
        """Send scalars to every tracker (``None`` values are skipped)."""
        clean = {k: float(v) for k, v in values.items() if v is not None}
        for tracker in self.trackers:
            tracker.log_scalars(clean, step)

    def log_histogram(self, name: str, values: torch.Tensor, step: int) -> None:
        """Send a histogram to every tracker."""
        for tracker in self.trackers:
            tracker.log_histogram(name, values, step)

    def wait_for_checkpoint(self) -> None:
        """Block until the pending background checkpoint write is on disk (re-raises its error)."""
        if self._files is not None:
            self._files.writer.wait()

    # ----------------------------------------------------------------- fit
    def fit(
        self,
        model: nn.Module,
        data: Any,
        loss: Callable[..., Any] | None,
        *,
        run_dir: str | Path,
        meta: dict[str, Any] | None = None,
    ) -> FitResult:
        """Train ``model`` on ``data`` and write the run files into ``run_dir``.

        Args:
            model: the model; after fit it holds the best weights (by ``config.monitor``).
            data: a :class:`~mlcore.data.DataModule` (``prepare`` is called).
            loss: ``loss_fn(outputs, targets)``, also handed to ``model.compute_loss`` when defined.
            run_dir: the run directory (``checkpoints/``, ``training_stats.json``, ``training_curves.png``,
                ``tensorboard/``).
            meta: provenance stored in the checkpoints (see :func:`mlcore.training.checkpoint.make_meta`).

        Returns:
            A :class:`FitResult`.

        Raises:
            RunInterrupted: Ctrl-C or SIGTERM stopped the run (after its files were written).
        """
        with InterruptGuard() as self._guard:
            result = self._fit(model, data, loss, Path(run_dir), meta)
        if result.stopped_reason == "interrupted" and self._guard.signal_name is not None:
            raise RunInterrupted(
                f"training interrupted by {self._guard.signal_name}: {result.last_checkpoint} holds epoch "
                f"{result.epochs_run} of {self.config.epochs}; run again into {self.run_dir} to resume",
                run_dir=str(self.run_dir),
                signal_name=self._guard.signal_name,
            )
        return result

    def _fit(
        self, model: nn.Module, data: Any, loss: Callable[..., Any] | None, run_dir: Path, meta: dict[str, Any] | None
    ) -> FitResult:
        started = time.monotonic()
        meta, loaders, tracker_objs = self._set_up(model, data, loss, run_dir, meta)
        files = self._files
        assert files is not None and self._steps is not None
        previous_reason = None
        if self.config.resume and files.last.exists():
            previous_reason = self._resume(meta)
        elif files.last.exists() and self.is_main:
            log.warning("%s exists and trainer.resume=false: starting over and overwriting it", files.last)
        self.trackers = start_trackers(
            tracker_objs,
            self.run_dir,
            {"trainer": unstructure(self.config), "seed": self.seed, "device": str(self.device), "meta": meta},
        )

        reason: StopReason = "completed"
        done = previous_reason == "early_stopping" or self.epoch >= self.config.epochs
        if done:
            reason = previous_reason if previous_reason in STOP_REASONS else "completed"  # type: ignore[assignment]
            log.info("nothing to do: the run in %s already finished (%s)", self.run_dir, reason)
        failed = True
        try:
            for cb in self.callbacks:
                cb.on_fit_start(self)
            if not done:
                reason = self._run(loaders, meta, started)
            failed = False
        except BaseException as exc:
            self._on_exception(exc)
            raise
        finally:
            result = self._finish(reason, failed)
        return result

    def _on_exception(self, exc: BaseException) -> None:
        """Tell the callbacks training failed; an error in one of them is logged, not raised over ``exc``."""
        for cb in self.callbacks:
            try:
                cb.on_exception(self, exc)
            except Exception as cb_exc:
                log.error("callback %s failed in on_exception: %s", type(cb).__name__, cb_exc)

    def _set_up(
        self, model: nn.Module, data: Any, loss: Callable[..., Any] | None, run_dir: Path, meta: dict[str, Any] | None
    ) -> tuple[dict[str, Any], Loaders, list[Tracker]]:
        """Resolve the device, rank and named components, build the loaders, optimizer and step loop."""
        from mlcore.devices import resolve_device
        from mlcore.registry import build_named
        from mlcore.seeding import seed_everything

        cfg = self.config
        self.run_dir = run_dir
        dev = self.device_name
        self.dist, self.device = setup_distributed(dev if isinstance(dev, torch.device) else resolve_device(dev))
        named_callbacks = build_callbacks(cfg.callbacks)
        tracker_objs = build_named("tracker", cfg.trackers, Tracker, where="trainer.trackers") if self.is_main else []
        seed_everything(self.seed, deterministic=cfg.deterministic)

        meta = dict(meta or {})
        if "data_state" not in meta and hasattr(data, "state_dict"):
            meta["data_state"] = plain_values(data.state_dict(), "data_state")
        loaders = build_loaders(
            data,
            batch_size=cfg.batch_size,
            eval_batch_size=cfg.eval_batch,
            num_workers=cfg.num_workers,
            device=self.device,
            dist=self.dist,
            seed=self.seed,
        )
        self.monitor = cfg.monitor
        if loaders.val is None and cfg.monitor.startswith("val_"):
            if cfg.monitor != "val_loss":
                raise ConfigError(f"trainer.monitor={cfg.monitor!r} needs a validation set, and the data has none")
            self.monitor = "train_loss"
            log.info("no validation set: monitoring train_loss")

        self.model = model.to(self.device)
        if isinstance(loss, nn.Module):
            loss = loss.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise MlcoreError(f"{type(model).__name__} has no trainable parameters")
        self.optimizer = build_optimizer(params, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        amp_dtype, self.scaler = self._amp()

        from mlcore.tuning.reporting import session_callbacks

        search_callbacks = session_callbacks()  # a trial of `mlcore tune`: report each epoch to the search
        self.callbacks = [*named_callbacks, *self.extra_callbacks, *search_callbacks]
        names: list[str | None] = [callback_entry(e)[0] for e in cfg.callbacks]
        names += [None] * (len(self.extra_callbacks) + len(search_callbacks))
        if cfg.patience > 0:
            self.callbacks.append(EarlyStopping(self.monitor, cfg.patience, cfg.min_delta, cfg.monitor_mode))
            names.append("early_stopping")
        self._callback_keys = callback_keys(self.callbacks, names)
        self._steps = StepLoop(
            model=self.model,
            loss=loss,
            optimizer=self.optimizer,
            scaler=self.scaler,
            amp_dtype=amp_dtype,
            device=self.device,
            dist=self.dist,
            grad_clip=cfg.grad_clip,
            accumulate=cfg.accumulate_grad_batches,
            epochs=cfg.epochs,
            callbacks=self.callbacks,
            host=self,
            progress=self.progress,
        )
        self.history, self.epoch = [], 0
        self.best_metric = math.inf if cfg.monitor_mode == "min" else -math.inf
        self.best_epoch = 0
        self.should_stop, self.stop_reason = False, ""
        self._best_state = None
        self._files = RunFiles(run_dir, is_main=self.is_main, background=cfg.async_checkpoint)
        self._files.prepare()
        self._files.on_disk = self._token()
        return meta, loaders, tracker_objs

    def _amp(self) -> tuple[torch.dtype | None, Any]:
        """(autocast dtype, GradScaler or None) for the device."""
        return amp_setup(self.config.amp, self.device)

    def _resume(self, meta: dict[str, Any]) -> str | None:
        """Restore the state from ``last.pt``; returns its recorded stop reason."""
        assert self._files is not None and self._steps is not None
        state = resume_from(
            self._files.last,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            callbacks=self.callbacks,
            callback_keys=self._callback_keys,
            device=self.device,
            meta=meta,
            monitor=self.monitor,
            monitor_mode=self.config.monitor_mode,
        )
        self.epoch, self.history = state.epoch, state.history
        self._files.on_disk = self._token()
        self._steps.global_step = self._resumed_step = state.global_step
        self.best_metric, self.best_epoch, self._best_state = state.best_metric, state.best_epoch, state.best_state
        return state.stopped_reason

    def _run(self, loaders: Loaders, meta: dict[str, Any], started: float) -> StopReason:
        """The epochs: train, validate, record, save; returns why they stopped."""
        cfg = self.config
        files, steps = self._files, self._steps
        assert files is not None and steps is not None
        limit = cfg.max_time_minutes * 60.0
        # mid-epoch guard (not under DDP: ranks must agree on every collective)
        deadline = started + limit if limit > 0 and not self.dist.enabled else None
        epoch_times: list[float] = []
        reason: StopReason = "completed"
        guard = self._guard
        # per batch only when not distributed: ranks must stop at the same step
        stop_requested = None if self.dist.enabled else (lambda: guard.requested() or files.writer.failed())
        if files.stats.exists():  # a resumed session: the old stats must not claim its end while it runs
            files.write_stats(self._stats("running"))
        try:
            for epoch in range(self.epoch + 1, cfg.epochs + 1):
                if any_rank(guard.requested(), self.dist, self.device):
                    raise StopRequested
                last = float(self.history[-1]["seconds"]) if self.history else 0.0
                if any_rank(overruns(started, limit, epoch_times, last), self.dist, self.device):
                    log.info("stopping before epoch %d: it would exceed max_time_minutes=%g", epoch, limit / 60)
                    reason = "time_limit"
                    break
                t0 = time.monotonic()
                self.epoch = epoch
                for cb in self.callbacks:
                    cb.on_epoch_start(self, epoch)
                loaders.set_epoch(epoch)
                lr = float(self.optimizer.param_groups[0]["lr"])
                try:
                    train = steps.train_epoch(loaders.train, epoch, deadline, stop_requested)
                except TimeUp:
                    self.epoch = epoch - 1
                    log.info("max_time_minutes=%g reached during epoch %d: stopped", cfg.max_time_minutes, epoch)
                    reason = "time_limit"
                    break
                if not math.isfinite(train["train_loss"]):
                    raise MlcoreError(
                        f"training diverged: train_loss is {train['train_loss']} at epoch {epoch} "
                        "(lower trainer.lr or set trainer.grad_clip)"
                    )
                val = steps.validate(loaders.val, stop_requested) if loaders.val is not None else {}
                for cb in self.callbacks:
                    cb.on_validation_end(self, epoch, val)
                record: dict[str, Any] = {
                    "epoch": epoch,
                    "train_loss": train.pop("train_loss"),
                    "val_loss": val.get("val_loss"),
                    "lr": lr,
                    "seconds": time.monotonic() - t0,
                    **train,
                    **{k: v for k, v in val.items() if k != "val_loss"},
                }
                improved = self._record(record)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, epoch, record)
                stopping = self.should_stop
                if stopping:
                    reason = self.stop_reason or "early_stopping"  # type: ignore[assignment]
                # best.pt: same content as last.pt, so a link/copy of it, cheaper than a second torch.save
                files.save(
                    model=self.model,
                    meta=meta,
                    state=self._state(reason if stopping else None),
                    best=improved,
                    token=self._token(),
                    stats=self._stats("running") if files.stats_due() else None,
                )
                epoch_times.append(time.monotonic() - t0)
                log.info(epoch_line(record, cfg.epochs, is_best=self.best_epoch == epoch))
                if stopping:
                    log.info("stopping after epoch %d (%s)", epoch, reason)
                    break
        except (KeyboardInterrupt, StopRequested):
            if guard.signal_name is None:  # a KeyboardInterrupt without our handler (not the main thread)
                guard.signal_name = "SIGINT"
            error = files.settle()
            self._roll_back_to_disk()  # an epoch whose last.pt was not written will be re-run on resume
            if error is not None:
                raise error from None
            log.warning("interrupted: %s holds epoch %d", files.last, self.epoch)
            reason = "interrupted"
        except BaseException:
            error = files.settle()
            self._roll_back_to_disk()
            if error is not None:  # the failed write is the cause; what follows is its consequence
                raise error from None
            raise
        return reason

    def _token(self) -> tuple[int, float, int, dict[str, torch.Tensor] | None]:
        """What :meth:`_roll_back_to_disk` needs to return to the state about to be saved."""
        return (len(self.history), self.best_metric, self.best_epoch, self._best_state)

    def _roll_back_to_disk(self) -> None:
        """Forget the epochs ``last.pt`` does not hold (their write failed or never started)."""
        assert self._files is not None
        if self._files.on_disk is None:
            return
        epochs, self.best_metric, self.best_epoch, self._best_state = self._files.on_disk
        del self.history[epochs:]
        self.epoch = epochs

    def _record(self, record: dict[str, Any]) -> bool:
        """Step the scheduler, append ``record`` to the history, track the best; returns whether it improved."""
        value = record.get(self.monitor)
        if value is None:
            available = ", ".join(k for k, v in record.items() if isinstance(v, float) and k != "seconds")
            raise ConfigError(f"trainer.monitor={self.monitor!r} is not logged (available: {available})")
        self.scheduler.step(value)
        self.history.append(record)
        better = value < self.best_metric if self.config.monitor_mode == "min" else value > self.best_metric
        improved = math.isfinite(value) and better
        if improved:
            self.best_metric, self.best_epoch = float(value), record["epoch"]
            self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.log_scalars(epoch_scalars(record), record["epoch"])
        return improved

    def _state(self, stopped_reason: str | None) -> dict[str, Any]:
        """The training state stored in ``last.pt`` beside the model and meta."""
        progress = (self.epoch, self.global_step, self.history)
        best = (self.monitor, self.config.monitor_mode, self.best_metric, self.best_epoch)
        optim = (self.optimizer, self.scheduler, self.scaler)
        callbacks = callback_states(self.callbacks, self._callback_keys)
        return training_state(progress, best, optim, callbacks, stopped_reason, seed=self.seed, config=self.config)

    def _stats(self, stopped_reason: StatsReason) -> dict[str, Any]:
        """The content of ``training_stats.json``."""
        best = (self.monitor, self.config.monitor_mode, self.best_metric, self.best_epoch)
        return training_stats(self.history, best, stopped_reason, seed=self.seed, device=self.device)

    def _finish(self, reason: StopReason, failed: bool) -> FitResult:
        """Load the best weights, wait for the last write, run ``on_fit_end``, close trackers, final files."""
        files = self._files
        assert files is not None
        try:
            files.close(quiet=failed)
        except BaseException:
            self._roll_back_to_disk()
            self._write_final_stats("error", quiet=True)
            teardown_distributed(self.dist)
            for tracker in self.trackers:
                tracker.close()
            raise
        if self._best_state is not None:
            load_model_state(self.model, self._best_state, where="best weights")
        result = FitResult(
            best_metric=self.best_metric,
            best_epoch=self.best_epoch,
            epochs_run=len(self.history),
            stopped_reason=reason,
            history=self.history,
            train_seconds=sum(float(r.get("seconds", 0.0)) for r in self.history),
            best_checkpoint=files.best,
            last_checkpoint=files.last,
            monitor=self.monitor,
        )
        try:
            if not failed:  # an exception propagates: no on_fit_end, stats say "error"
                for cb in self.callbacks:
                    cb.on_fit_end(self, result)
        except BaseException:
            failed = True
            raise
        finally:
            try:
                self._write_final_stats("error" if failed else reason, quiet=failed)
                if self.is_main and self.history and self.config.plot:
                    files.plot(self.history)
            finally:
                for tracker in self.trackers:  # after the final files: trackers upload them as artefacts
                    tracker.close()
                teardown_distributed(self.dist)
        return result

    def _write_final_stats(self, reason: StatsReason, *, quiet: bool) -> None:
        """The last ``training_stats.json``; when the run already failed, a failure here is only logged."""
        if not self.is_main or not self.history or self._files is None:
            return
        try:
            self._files.write_stats(self._stats(reason), final=True)
        except MlcoreError as exc:
            if not quiet:
                raise
            log.error("%s", exc)
