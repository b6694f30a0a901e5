"""The generic supervised trainer the plugins reuse.

Example::

    from mlcore.training import Trainer, TrainerConfig
    from mlcore.training.checkpoint import make_meta

    trainer = Trainer(TrainerConfig(epochs=20, lr=3e-3, patience=5), device="auto", seed=0)
    meta = make_meta(plugin="my-plugin", components={"model": ("mlp", model_cfg)}, data=data)
    result = trainer.fit(model, data, torch.nn.MSELoss(), run_dir="runs/demo", meta=meta)
    print(result.best_metric, result.stopped_reason)   # the model now holds the best weights

Loss contract: when the model defines ``compute_loss(batch, loss_fn)`` the trainer calls it (it
returns a scalar tensor, or ``(tensor, {name: float})`` of extra values that are averaged per
epoch and logged as ``train_<name>`` / ``val_<name>``; ``self.training`` tells train from
validation). Otherwise ``loss_fn(model(inputs), targets)`` with ``inputs, targets = batch``
(``inputs`` is passed as one argument even when it is a tuple or dict).

Reproducibility: the training order of epoch ``e`` depends only on ``(seed, e)`` (a
``torch.Generator`` re-seeded with :func:`shuffle_seed` each epoch) and ``last.pt`` stores all
RNG states, so a run interrupted and resumed ends bitwise-equal to an uninterrupted one on CPU.

Stopping: ``stopped_reason`` is ``completed``, ``early_stopping``, ``time_limit`` (the next
epoch would not fit in ``max_time_minutes``, or the limit was hit mid-epoch; the partial epoch
is discarded) or ``interrupted`` (Ctrl-C / ``KeyboardInterrupt``: fit() *returns* normally and
``last.pt`` holds the last completed epoch; run again with ``resume`` to continue).

Files (rank 0 only): ``checkpoints/last.pt`` after every epoch and ``checkpoints/best.pt`` (a hard link
to, or copy of, that ``last.pt``) when the monitored value improved, both atomic;
``training_stats.json`` after the first epoch, then at most every ``STATS_EVERY_SECONDS`` and at the
end; ``training_curves.png`` at the end; ``tensorboard/`` through the trackers.

Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1) the trainer joins the process group
(nccl on CUDA, gloo otherwise), shards the training set with ``DistributedSampler``, wraps the
model in ``DistributedDataParallel`` and lets only rank 0 write files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from mlcore.config import unstructure
from mlcore.errors import CheckpointError, ConfigError, DataError, MlcoreError
from mlcore.training.batches import LossModule, batch_size_of, move_to_device, split_loss
from mlcore.training.callbacks import Callback, EarlyStopping
from mlcore.training.checkpoint import (
    CheckpointWriter,
    checkpoint_payload,
    load_checkpoint,
    load_model_state,
    plain,
    snapshot,
    write_payload,
)
from mlcore.training.config import TrainerConfig
from mlcore.training.optim import EpochScheduler, build_optimizer, build_scheduler
from mlcore.training.tracking import Tracker

log = logging.getLogger(__name__)

STOP_REASONS = ("completed", "early_stopping", "time_limit", "interrupted")

#: Without clipping and without a callback that needs it, the gradient norm is measured on every
#: GRAD_NORM_EVERY-th optimizer step of an epoch (the first one included): it reads every gradient
#: once, which costs a few % of a step for small models.
GRAD_NORM_EVERY = 10
#: ``training_stats.json`` is rewritten after an epoch when this many seconds have passed since the
#: last write (and always at the end of fit); ``last.pt`` holds the full history at every epoch.
STATS_EVERY_SECONDS = 10.0
_NULL_CONTEXT = contextlib.nullcontext()


def shuffle_seed(seed: int, epoch: int) -> int:
    """The seed of the training-order generator for ``epoch`` (1-based); depends on nothing else."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


@attrs.define
class FitResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        best_metric: best value of ``monitor`` (``inf``/``-inf`` if no epoch completed).
        best_epoch: 1-based epoch of the best value (0 if none).
        epochs_run: epochs completed, including those of earlier, resumed sessions.
        stopped_reason: ``completed`` | ``early_stopping`` | ``time_limit`` | ``interrupted``.
        history: one record per epoch: ``epoch``, ``train_loss``, ``val_loss`` (``None`` without a
            validation set), ``lr`` (used in the epoch), ``seconds`` (training + validation), ``grad_norm`` /
            ``grad_norm_max`` (mean / max global gradient norm before clipping, over every optimizer step when
            clipping or a callback uses it, else over every ``GRAD_NORM_EVERY``-th step) and the model's extras
            (``train_<name>``, ``val_<name>``).
        train_seconds: sum of the epochs' seconds (training + validation, all sessions).
        best_checkpoint, last_checkpoint: ``<run_dir>/checkpoints/best.pt`` and ``last.pt``.
        monitor: the metric that was monitored (``train_loss`` when ``val_loss`` had no val set).
    """

    best_metric: float
    best_epoch: int
    epochs_run: int
    stopped_reason: str
    history: list[dict[str, Any]]
    train_seconds: float
    best_checkpoint: Path
    last_checkpoint: Path
    monitor: str = "val_loss"


# --------------------------------------------------------------------------- helpers


def _seed_worker(worker_id: int) -> None:
    """Seed ``random`` and NumPy in DataLoader workers from torch's per-worker seed."""
    import random

    import numpy as np

    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


@attrs.define
class _Dist:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> _Dist:
        ws = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if ws <= 1:
            return cls()
        return cls(ws, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))


class _TimeUp(Exception):
    """Raised inside an epoch when the wall-clock limit is reached."""


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Generic supervised training loop (see the module docstring for the contract).

    Args:
        config: the :class:`TrainerConfig` (defaults when ``None``).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``mps`` or a ``torch.device``.
        seed: seeds Python, NumPy and torch at the start of :meth:`fit` and the data order.
        callbacks: callback instances, run after those named in ``config.callbacks``.
        progress: overrides ``config.progress`` when not ``None``.

    While :meth:`fit` runs, callbacks can read ``model``, ``optimizer``, ``scheduler``, ``epoch``,
    ``global_step``, ``history``, ``best_metric``, ``best_epoch``, ``run_dir``, ``device``, ``monitor``
    and set ``should_stop``.
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
        self.global_step = 0
        self.monitor = self.config.monitor
        self.best_metric = math.inf
        self.best_epoch = 0
        self.should_stop = False
        self.stop_reason = ""
        self.dist = _Dist()
        self._best_state: dict[str, torch.Tensor] | None = None
        self._stats_written = -math.inf
        self._writer = CheckpointWriter(background=False)

    # ----------------------------------------------------------------- logging API for callbacks
    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0, or not distributed)."""
        return self.dist.rank == 0

    def log_scalars(self, values: Mapping[str, float | None], step: int) -> None:
        """Send scalars to every tracker (``None`` values are skipped)."""
        clean = {k: float(v) for k, v in values.items() if v is not None}
        for tracker in self.trackers:
            tracker.log_scalars(clean, step)

    def log_histogram(self, name: str, values: torch.Tensor, step: int) -> None:
        """Send a histogram to every tracker."""
        for tracker in self.trackers:
            tracker.log_histogram(name, values, step)

    def _better(self, value: float, best: float) -> bool:
        return value < best if self.config.monitor_mode == "min" else value > best

    # ----------------------------------------------------------------- setup
    def _resolve_named(self, kind: str, names: Sequence[str], base: type) -> list[Any]:
        from mlcore.registry import build_named

        return build_named(kind, names, base, where=f"trainer.{kind}s")

    def _amp(self) -> tuple[torch.dtype | None, Any]:
        """(autocast dtype, GradScaler or None) for the device."""
        if not self.config.amp:
            return None, None
        if self.device.type == "cuda":
            return torch.float16, torch.amp.GradScaler("cuda")
        if self.device.type == "cpu":
            return torch.bfloat16, None
        log.warning("amp is not supported on %s: training in float32", self.device.type)
        return None, None

    def _autocast(self) -> Any:
        if self._amp_dtype is None:
            return _NULL_CONTEXT
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def _setup_dist(self) -> None:
        self.dist = _Dist.from_env()
        if not self.dist.enabled:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            self.dist.initialized_here = True
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)

    def _loaders(self, data: Any) -> tuple[Any, Any]:
        from torch.utils.data import DataLoader, DistributedSampler, IterableDataset

        cfg = self.config
        if hasattr(data, "prepare"):
            data.prepare()
        train_set = data.train_set()
        if isinstance(train_set, IterableDataset):
            raise DataError(
                f"{type(data).__name__}.train_set() is an IterableDataset; the trainer needs a map-style dataset "
                "(with __len__ and __getitem__) to shuffle it reproducibly"
            )
        if train_set is None or len(train_set) == 0:
            raise DataError(f"{type(data).__name__}.train_set() is empty: nothing to train on")
        val_set = data.val_set() if hasattr(data, "val_set") else None
        if val_set is not None and len(val_set) == 0:
            val_set = None
        common: dict[str, Any] = {
            "num_workers": cfg.num_workers,
            "collate_fn": getattr(data, "collate_fn", None),
            "pin_memory": self.device.type == "cuda",
        }
        if cfg.num_workers > 0:
            common["worker_init_fn"] = _seed_worker
        self._generator = torch.Generator()
        self._sampler: Any = None
        if self.dist.enabled:
            self._sampler = DistributedSampler(
                train_set, num_replicas=self.dist.world_size, rank=self.dist.rank, shuffle=True, seed=self.seed
            )
            train = DataLoader(
                train_set, batch_size=cfg.batch_size, sampler=self._sampler, generator=self._generator, **common
            )
        else:
            train = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, generator=self._generator, **common)
        val = DataLoader(val_set, batch_size=cfg.eval_batch, shuffle=False, **common) if val_set is not None else None
        return train, val

    # ----------------------------------------------------------------- state
    def _state(self, stopped_reason: str | None) -> dict[str, Any]:
        from mlcore.seeding import rng_state

        callbacks = {f"{i}:{type(cb).__name__}": cb.state_dict() for i, cb in enumerate(self.callbacks)}
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "monitor": self.monitor,
            "monitor_mode": self.config.monitor_mode,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
            "seed": self.seed,
            "trainer_config": unstructure(self.config),
            "callbacks": {k: v for k, v in callbacks.items() if v},
            "stopped_reason": stopped_reason,
        }

    def _save(
        self, path: Path, meta: dict[str, Any], stopped_reason: str | None = None, *, also: Path | None = None
    ) -> None:
        """Write the checkpoint to ``path`` (and make ``also`` a copy of it) through the checkpoint writer.

        With ``async_checkpoint`` the state is snapshotted here and written on the writer's thread.
        """
        if not self.is_main:
            return
        payload = checkpoint_payload(model=self.model, meta=meta, **self._state(stopped_reason))
        if self._writer.background:
            payload = snapshot(payload)

        def job() -> None:
            write_payload(path, payload)
            if also is not None:
                self._copy(path, also)

        self._writer.submit(job)

    def _copy(self, src: Path, dst: Path) -> None:
        """Make ``dst`` a copy of the just-written ``src`` atomically: a hard link when the file system
        allows it (no data written; ``src`` is always replaced by a new file, never modified in place),
        else a byte copy."""
        if not self.is_main:
            return
        tmp = dst.with_name(f".{dst.name}.link.tmp")
        try:
            tmp.unlink(missing_ok=True)
            os.link(src, tmp)
            os.replace(tmp, dst)
            tmp.unlink(missing_ok=True)  # rename() is a no-op when dst already is the same file
            return
        except OSError:
            tmp.unlink(missing_ok=True)
        import shutil

        from mlcore.io import atomic_write

        with open(src, "rb") as fh:
            atomic_write(dst, lambda out: shutil.copyfileobj(fh, out, 1 << 20))

    def _resume(self, path: Path, meta: dict[str, Any]) -> str | None:
        """Restore the full state from ``last.pt``; returns its recorded stop reason."""
        from mlcore.seeding import set_rng_state

        ckpt = load_checkpoint(path, map_location=self.device)
        old = ((ckpt["meta"].get("components") or {}).get("model") or {}).get("name")
        new = ((meta.get("components") or {}).get("model") or {}).get("name")
        if old and new and old != new:
            raise CheckpointError(
                f"cannot resume from {path}: it holds model {old!r}, not {new!r} "
                "(use another run directory or set trainer.resume=false)"
            )
        load_model_state(self.model, ckpt["model"], where=f"{path} (resume)", name=new or "")
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"cannot resume from {path}: optimizer/scheduler state does not fit "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); set trainer.resume=false"
            ) from None
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch = int(ckpt["epoch"])
        self.global_step = int(ckpt.get("global_step", 0))
        self.history = [dict(r) for r in ckpt.get("history", [])]
        self.best_metric = float(ckpt.get("best_metric", self.best_metric))
        self.best_epoch = int(ckpt.get("best_epoch", 0))
        if ckpt.get("monitor") and ckpt["monitor"] != self.monitor:
            log.warning("resuming: monitor changed from %s to %s; best metric reset", ckpt["monitor"], self.monitor)
            self.best_metric = math.inf if self.config.monitor_mode == "min" else -math.inf
            self.best_epoch = 0
        states = ckpt.get("callbacks") or {}
        for i, cb in enumerate(self.callbacks):
            state = states.get(f"{i}:{type(cb).__name__}")
            if state:
                cb.load_state_dict(state)
        best_path = path.parent / "best.pt"
        if best_path.exists() and self.best_epoch:
            best = load_checkpoint(best_path, map_location=self.device)
            self._best_state = {k: v.detach().clone() for k, v in best["model"].items()}
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        log.info("resumed from %s at epoch %d", path, self.epoch)
        return ckpt.get("stopped_reason")

    def _write_stats(self, stopped_reason: str | None, *, final: bool = False) -> None:
        """Write ``training_stats.json`` atomically; per-epoch updates skip the fsync (the final write
        and ``last.pt`` are durable), which costs more than the write itself on some disks."""
        if not self.is_main:
            return
        from mlcore.io import atomic_write_json, to_jsonable

        self._stats_written = time.monotonic()
        path = self.run_dir / "training_stats.json"
        data = {
            "monitor": self.monitor,
            "monitor_mode": self.config.monitor_mode,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history),
            "stopped_reason": stopped_reason,
            "train_seconds": sum(float(r.get("seconds", 0.0)) for r in self.history),
            "seed": self.seed,
            "device": str(self.device),
            "history": self.history,
        }
        if final:
            atomic_write_json(path, data)
            return
        import json

        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    # ----------------------------------------------------------------- loops
    def _train_epoch(self, loader: Any, epoch: int, deadline: float | None) -> dict[str, Any]:
        cfg = self.config
        model, opt = self.model, self.optimizer
        model.train()
        accum = cfg.accumulate_grad_batches
        n = len(loader)
        losses: list[torch.Tensor] = []  # per-batch losses, summed once at the end (no per-step sync)
        sizes: list[int] = []
        extras: dict[str, float] = {}
        norm_sum = 0.0
        norm_max = 0.0
        norm_steps = 0
        norms: list[torch.Tensor] = []
        steps = 0
        show = self.progress and self.is_main and sys.stderr.isatty()
        iterator: Any = loader
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = iterator = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, dynamic_ncols=True)
        non_blocking = self.device.type == "cuda"
        opt.zero_grad(set_to_none=True)
        try:
            for i, batch in enumerate(iterator):
                if deadline is not None and time.monotonic() > deadline:
                    raise _TimeUp
                batch = move_to_device(batch, self.device, non_blocking)
                bs = batch_size_of(batch)
                with self._autocast():
                    loss, logs = split_loss(self._forward(batch))
                group = min(accum, n - (i // accum) * accum)
                scaled = loss / group if group > 1 else loss
                if self.scaler is not None:
                    self.scaler.scale(scaled).backward()
                else:
                    scaled.backward()
                if (i + 1) % accum == 0 or i + 1 == n:
                    norm = self._optimizer_step(steps % self._norm_every == 0)
                    steps += 1
                    if norm is not None:
                        norms.append(norm)
                detached = loss.detach()
                losses.append(detached)
                sizes.append(bs)
                for k, v in logs.items():
                    extras[k] = extras.get(k, 0.0) + float(v) * bs
                for cb in self._batch_end_callbacks:
                    cb.on_batch_end(self, i, detached, logs)
                if bar is not None and (i % 10 == 0 or i + 1 == n):
                    bar.set_postfix(loss=f"{float(detached):.4g}")
        finally:
            if bar is not None:
                bar.close()
        if norms:
            stacked = torch.stack([x.float() for x in norms]).cpu()
            finite = stacked[stacked.isfinite()]
            if finite.numel():
                norm_sum, norm_max, norm_steps = float(finite.sum()), float(finite.max()), int(finite.numel())
        # sequential float64 sum of loss * batch size: the same figure a hand-written loop gets
        loss_sum = 0.0
        for value, size in zip(torch.stack(losses).double().tolist() if losses else [], sizes):
            loss_sum += value * size
        values = [loss_sum, float(sum(sizes)), *(extras[k] for k in sorted(extras))]
        totals = torch.tensor(values, dtype=torch.float64)
        if self.dist.enabled:
            import torch.distributed as dist

            totals = totals.to(self.device)
            dist.all_reduce(totals)
            totals = totals.cpu()
        total_count = max(float(totals[1]), 1.0)
        out: dict[str, Any] = {"train_loss": float(totals[0]) / total_count}
        for j, k in enumerate(sorted(extras)):
            out[f"train_{k}"] = float(totals[2 + j]) / total_count
        out["grad_norm"] = norm_sum / norm_steps if norm_steps else None
        out["grad_norm_max"] = norm_max if norm_steps else None
        return out

    def _forward(self, batch: Any) -> Any:
        if self._ddp is not None:
            return self._ddp(batch)
        return self._loss_module.forward(batch)  # the wrapper has no hooks; the model is called normally

    def _optimizer_step(self, measure: bool) -> torch.Tensor | None:
        """Unscale, clip, step; returns the pre-clip gradient norm when measured (always when clipping)."""
        cfg = self.config
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm: torch.Tensor | None = None
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self._params, cfg.grad_clip)
        elif measure or self._pre_step_callbacks:
            grads = [p.grad for p in self._params if p.grad is not None]
            norm = _total_norm(grads, self._uniform_params) if grads else torch.zeros((), device=self.device)
        for cb in self._pre_step_callbacks:
            cb.on_before_optimizer_step(self, norm)  # type: ignore[arg-type]
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        return norm.detach() if norm is not None else None

    @torch.no_grad()
    def _validate(self, loader: Any) -> dict[str, Any]:
        model = self.model
        model.eval()
        loss_sum = 0.0
        count = 0
        extras: dict[str, float] = {}
        for batch in loader:
            batch = move_to_device(batch, self.device, self.device.type == "cuda")
            bs = batch_size_of(batch)
            with self._autocast():
                loss, logs = split_loss(self._loss_module(batch))
            loss_sum += float(loss) * bs
            count += bs
            for k, v in logs.items():
                extras[k] = extras.get(k, 0.0) + float(v) * bs
        count = max(count, 1)
        return {"val_loss": loss_sum / count, **{f"val_{k}": v / count for k, v in sorted(extras.items())}}

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
        """
        from mlcore.devices import resolve_device
        from mlcore.seeding import seed_everything

        cfg = self.config
        started = time.monotonic()
        self.run_dir = Path(run_dir)
        ckpt_dir = self.run_dir / "checkpoints"
        best_path, last_path = ckpt_dir / "best.pt", ckpt_dir / "last.pt"
        dev = self.device_name
        self.device = dev if isinstance(dev, torch.device) else resolve_device(dev)
        self._setup_dist()
        named_callbacks = self._resolve_named("callback", cfg.callbacks, Callback)
        tracker_objs = self._resolve_named("tracker", cfg.trackers, Tracker) if self.is_main else []
        seed_everything(self.seed, deterministic=cfg.deterministic)

        meta = dict(meta or {})
        if "data_state" not in meta and hasattr(data, "state_dict"):
            meta["data_state"] = plain(data.state_dict(), "data_state")
        train_loader, val_loader = self._loaders(data)

        self.monitor = cfg.monitor
        if val_loader is None and cfg.monitor.startswith("val_"):
            if cfg.monitor != "val_loss":
                raise ConfigError(f"trainer.monitor={cfg.monitor!r} needs a validation set, and the data has none")
            self.monitor = "train_loss"
            log.info("no validation set: monitoring train_loss")

        self.model = model.to(self.device)
        if isinstance(loss, nn.Module):
            loss = loss.to(self.device)
        self._params = [p for p in model.parameters() if p.requires_grad]
        self._uniform_params = len({(p.device, p.dtype) for p in self._params}) == 1
        if not self._params:
            raise MlcoreError(f"{type(model).__name__} has no trainable parameters")
        self._loss_module = LossModule(model, loss)
        self._ddp = None
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp = DistributedDataParallel(self._loss_module, device_ids=ids)
        self.optimizer = build_optimizer(self._params, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        self._amp_dtype, self.scaler = self._amp()

        self.callbacks = [*named_callbacks, *self.extra_callbacks]
        if cfg.patience > 0:
            self.callbacks.append(EarlyStopping(self.monitor, cfg.patience, cfg.min_delta, cfg.monitor_mode))
        # per-step hooks: only the callbacks that override them (keeps the step loop lean)
        self._batch_end_callbacks = [cb for cb in self.callbacks if _overrides(cb, "on_batch_end")]
        self._pre_step_callbacks = [cb for cb in self.callbacks if _overrides(cb, "on_before_optimizer_step")]
        self._norm_every = 1 if cfg.grad_clip > 0 or self._pre_step_callbacks else GRAD_NORM_EVERY
        self.history, self.epoch, self.global_step = [], 0, 0
        self.best_metric = math.inf if cfg.monitor_mode == "min" else -math.inf
        self.best_epoch = 0
        self.should_stop, self.stop_reason = False, ""
        self._best_state = None
        self._stats_written = -math.inf
        self._writer = CheckpointWriter(background=cfg.async_checkpoint and self.is_main)
        if self.is_main:
            ckpt_dir.mkdir(parents=True, exist_ok=True)  # the run files do not wait for the first checkpoint

        previous_reason = None
        if cfg.resume and last_path.exists():
            previous_reason = self._resume(last_path, meta)
        elif last_path.exists() and self.is_main:
            log.warning("%s exists and trainer.resume=false: starting over and overwriting it", last_path)

        self.trackers = []
        try:
            for tracker in tracker_objs:
                tracker.start(self.run_dir, self._tracker_config(meta))
                self.trackers.append(tracker)
        except BaseException:
            for tracker in self.trackers:
                tracker.close()
            raise

        reason = "completed"
        if previous_reason == "early_stopping" or self.epoch >= cfg.epochs:
            reason = previous_reason or "completed"
            log.info("nothing to do: the run in %s already finished (%s)", self.run_dir, reason)
        failed = True
        try:
            for cb in self.callbacks:
                cb.on_fit_start(self)
            if self.epoch < cfg.epochs and previous_reason != "early_stopping":
                reason = self._loop(train_loader, val_loader, meta, started)
            failed = False
        finally:
            if self._best_state is not None:
                load_model_state(self.model, self._best_state, where="best weights")
            result = FitResult(
                best_metric=self.best_metric,
                best_epoch=self.best_epoch,
                epochs_run=len(self.history),
                stopped_reason=reason,
                history=self.history,
                train_seconds=sum(float(r.get("seconds", 0.0)) for r in self.history),
                best_checkpoint=best_path,
                last_checkpoint=last_path,
                monitor=self.monitor,
            )
            try:
                try:
                    self._close_writer(quiet=failed)
                except BaseException:
                    failed = True
                    raise
                if not failed:  # an exception propagates: no on_fit_end, stats say "error"
                    for cb in self.callbacks:
                        cb.on_fit_end(self, result)
            finally:
                for tracker in self.trackers:
                    tracker.close()
                self._finish_files("error" if failed else reason)
                self._teardown_dist()
        return result

    def _close_writer(self, *, quiet: bool) -> None:
        """Finish the pending checkpoint write; when the run already failed, log (not raise) its error."""
        try:
            self._writer.close()
        except Exception as exc:
            if not quiet:
                raise
            log.error("writing the last checkpoint failed too: %s", exc)

    def _tracker_config(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "trainer": unstructure(self.config),
            "seed": self.seed,
            "device": str(self.device),
            "meta": {k: v for k, v in meta.items() if k != "data_state"},
        }

    def _finish_files(self, reason: str) -> None:
        if not self.is_main or not self.history:
            return
        self._write_stats(reason, final=True)
        if self.config.plot:
            from mlcore.training.plots import plot_training_curves

            try:
                plot_training_curves(self.history, self.run_dir / "training_curves.png", title=self.run_dir.name)
            except Exception as exc:  # a plot must never lose a finished run
                log.warning("could not draw training_curves.png: %s", exc)

    def _teardown_dist(self) -> None:
        if self.dist.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()
                if self.dist.initialized_here:
                    dist.destroy_process_group()

    def _stop_for_time(self, started: float, epoch_times: list[float]) -> bool:
        """Whether the next epoch (estimated by the slowest so far) would overrun the limit."""
        limit = self.config.max_time_minutes * 60.0
        if limit <= 0:
            return False
        estimate = max(epoch_times) if epoch_times else float(self.history[-1]["seconds"]) if self.history else 0.0
        stop = time.monotonic() - started + estimate > limit
        if self.dist.enabled:
            import torch.distributed as dist

            flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item() > 0)
        return stop

    def _loop(self, train_loader: Any, val_loader: Any, meta: dict[str, Any], started: float) -> str:
        cfg = self.config
        best_path = self.run_dir / "checkpoints" / "best.pt"
        last_path = self.run_dir / "checkpoints" / "last.pt"
        limit = cfg.max_time_minutes * 60.0
        # mid-epoch guard (not under DDP: ranks must agree on every collective)
        deadline = started + limit if limit > 0 and not self.dist.enabled else None
        epoch_times: list[float] = []
        reason = "completed"
        first = self.epoch + 1
        saved = len(self.history)  # epochs that last.pt holds
        saved_best = (self.best_metric, self.best_epoch, self._best_state)
        try:
            for epoch in range(first, cfg.epochs + 1):
                if self._stop_for_time(started, epoch_times):
                    log.info("stopping before epoch %d: it would exceed max_time_minutes=%g", epoch, limit / 60)
                    reason = "time_limit"
                    break
                t0 = time.monotonic()
                self.epoch = epoch
                for cb in self.callbacks:
                    cb.on_epoch_start(self, epoch)
                if self._sampler is not None:
                    self._sampler.set_epoch(epoch)
                self._generator.manual_seed(shuffle_seed(self.seed, epoch))
                lr = float(self.optimizer.param_groups[0]["lr"])
                try:
                    train = self._train_epoch(train_loader, epoch, deadline)
                except _TimeUp:
                    self.epoch = epoch - 1
                    log.info("max_time_minutes=%g reached during epoch %d: stopped", cfg.max_time_minutes, epoch)
                    reason = "time_limit"
                    break
                if not math.isfinite(train["train_loss"]):
                    raise MlcoreError(
                        f"training diverged: train_loss is {train['train_loss']} at epoch {epoch} "
                        "(lower trainer.lr or set trainer.grad_clip)"
                    )
                val = self._validate(val_loader) if val_loader is not None else {}
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
                value = record.get(self.monitor)
                if value is None:
                    available = ", ".join(k for k, v in record.items() if isinstance(v, float) and k != "seconds")
                    raise ConfigError(f"trainer.monitor={self.monitor!r} is not logged (available: {available})")
                self.scheduler.step(value)
                self.history.append(record)
                improved = math.isfinite(value) and self._better(value, self.best_metric)
                if improved:
                    self.best_metric, self.best_epoch = float(value), epoch
                    self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self.log_scalars(self._epoch_scalars(record), epoch)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, epoch, record)
                stopping = self.should_stop
                if stopping:
                    reason = self.stop_reason or "early_stopping"
                # best.pt: same content as last.pt, so a link/copy of it, cheaper than a second torch.save
                self._save(last_path, meta, reason if stopping else None, also=best_path if improved else None)
                saved = len(self.history)
                saved_best = (self.best_metric, self.best_epoch, self._best_state)
                if time.monotonic() - self._stats_written >= STATS_EVERY_SECONDS:
                    self._write_stats(None)
                epoch_times.append(time.monotonic() - t0)
                self._log_epoch(record)
                if stopping:
                    log.info("stopping after epoch %d (%s)", epoch, reason)
                    break
        except KeyboardInterrupt:
            self._writer.wait()  # last.pt must hold epoch ``saved`` before we say so
            del self.history[saved:]  # an epoch whose last.pt was not written will be re-run on resume
            self.best_metric, self.best_epoch, self._best_state = saved_best
            self.epoch = saved
            log.warning("interrupted: %s holds epoch %d", last_path, self.epoch)
            reason = "interrupted"
        return reason

    def _epoch_scalars(self, record: Mapping[str, Any]) -> dict[str, float | None]:
        names = {"train_loss": "loss/train", "val_loss": "loss/val", "lr": "lr", "seconds": "time/epoch_seconds"}
        out: dict[str, float | None] = {}
        for k, v in record.items():
            if k == "epoch" or not isinstance(v, int | float) or isinstance(v, bool):
                continue
            out[names.get(k, f"metrics/{k}")] = float(v)
        return out

    def _log_epoch(self, record: Mapping[str, Any]) -> None:
        parts = [f"epoch {record['epoch']}/{self.config.epochs}", f"train_loss={record['train_loss']:.4g}"]
        if record.get("val_loss") is not None:
            parts.append(f"val_loss={record['val_loss']:.4g}")
        parts.append(f"lr={record['lr']:.3g}")
        for k, v in record.items():
            if k not in ("epoch", "train_loss", "val_loss", "lr", "seconds", "grad_norm_max") and isinstance(v, float):
                parts.append(f"{k}={v:.4g}")
        parts.append(f"{record['seconds']:.1f}s")
        if self.best_epoch == record["epoch"]:
            parts.append("*best*")
        log.info("  ".join(parts))


def _overrides(callback: Callback, hook: str) -> bool:
    """Whether ``callback`` overrides ``hook`` of the :class:`Callback` base."""
    return getattr(type(callback), hook, None) is not getattr(Callback, hook)


def _total_norm(grads: list[torch.Tensor], uniform: bool = False) -> torch.Tensor:
    """Global L2 norm of the gradients (what ``clip_grad_norm_`` computes, without scaling).

    ``uniform`` (all on one device with one dtype) takes a fused fast path.
    """
    if uniform and hasattr(torch, "_foreach_norm"):
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)
    if get_total_norm is not None:
        return get_total_norm(grads)  # type: ignore[no-any-return]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
