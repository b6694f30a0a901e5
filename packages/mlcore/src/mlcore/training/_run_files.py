"""The trainer's run files: the checkpoint state, saving it, resuming from it, ``training_stats.json``.

Everything here takes plain values (model, optimizer, history...) so that it can be tested and
reused without a :class:`~mlcore.training.Trainer`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from mlcore.errors import CheckpointError, MlcoreError
from mlcore.training.callbacks import Callback
from mlcore.training.checkpoint import (
    CheckpointWriter,
    checkpoint_payload,
    detached_copy,
    load_checkpoint,
    load_model_state,
    plain_values,
    write_error,
    write_payload,
)
from mlcore.training.result import StatsReason

log = logging.getLogger(__name__)

#: ``training_stats.json`` is rewritten after an epoch when this many seconds have passed since the
#: last write (and always at the end of fit); ``last.pt`` holds the full history at every epoch.
STATS_EVERY_SECONDS = 10.0


def copy_file_atomically(src: Path, dst: Path) -> None:
    """Make ``dst`` a copy of the just-written ``src`` atomically: a hard link when the file system
    allows it (no data written; ``src`` is always replaced by a new file, never modified in place),
    else a byte copy."""
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    try:
        _copy_file(src, dst, tmp)
    except OSError as exc:
        raise write_error(dst, exc) from None


def _copy_file(src: Path, dst: Path, tmp: Path) -> None:
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


def callback_keys(callbacks: Sequence[Callback], names: Sequence[str | None]) -> list[str]:
    """The stable key under which each callback's state is stored in ``last.pt``.

    ``names[i]`` is the registered name the callback was built from (``None`` for an instance
    passed in code, which is keyed by its ``state_key`` or its class path). The list position
    plays no part, so adding or removing a callback before resuming keeps the others' state; a
    repeated key gets ``#2``, ``#3``... in order.
    """
    keys: list[str] = []
    for cb, name in zip(callbacks, names, strict=True):
        key = name or cb.state_key or f"{type(cb).__module__}.{type(cb).__qualname__}"
        n = 1
        while (f"{key}#{n}" if n > 1 else key) in keys:
            n += 1
        keys.append(f"{key}#{n}" if n > 1 else key)
    return keys


def callback_states(callbacks: Sequence[Callback], keys: Sequence[str]) -> dict[str, Any]:
    """The non-empty ``state_dict()`` of each callback, under its key (see :func:`callback_keys`)."""
    states = {key: cb.state_dict() for cb, key in zip(callbacks, keys, strict=True)}
    return {k: v for k, v in states.items() if v}


def restore_callback_states(callbacks: Sequence[Callback], keys: Sequence[str], states: Mapping[str, Any]) -> None:
    """Give each callback the state saved under its key.

    Checkpoints written before the keys were stable used ``"<position>:<ClassName>"``; such a state
    goes to the callback of that class when exactly one of the saved states has its class name.
    """
    by_class: dict[str, list[Any]] = {}
    for key, state in states.items():
        position, sep, cls_name = key.partition(":")
        if sep and position.isdigit():
            by_class.setdefault(cls_name, []).append(state)
    for cb, key in zip(callbacks, keys, strict=True):
        state = states.get(key)
        if state is None and len(by_class.get(type(cb).__name__, [])) == 1:
            state = by_class[type(cb).__name__][0]
        if state:
            cb.load_state_dict(state)


def training_state(
    progress: tuple[int, int, list[dict[str, Any]]],
    best: tuple[str, str, float, int],
    optim: tuple[torch.optim.Optimizer, Any, Any],
    callbacks: dict[str, Any],
    stopped_reason: str | None,
    *,
    seed: int,
    config: Any,
) -> dict[str, Any]:
    """The training state stored in ``last.pt`` beside the model and meta.

    ``progress`` is ``(epoch, global_step, history)``, ``best`` ``(monitor, monitor_mode, best_metric,
    best_epoch)``, ``optim`` ``(optimizer, scheduler, scaler or None)``, ``callbacks`` their states.
    """
    from mlcore.config import unstructure
    from mlcore.seeding import rng_state

    (epoch, global_step, history), (monitor, mode, best_metric, best_epoch) = progress, best
    optimizer, scheduler, scaler = optim
    return {
        "epoch": epoch,
        "global_step": global_step,
        "monitor": monitor,
        "monitor_mode": mode,
        "best_metric": best_metric,
        "best_epoch": best_epoch,
        "history": history,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "seed": seed,
        "trainer_config": unstructure(config),
        "callbacks": callbacks,
        "stopped_reason": stopped_reason,
    }


def training_stats(
    history: list[dict[str, Any]],
    best: tuple[str, str, float, int],
    stopped_reason: StatsReason,
    *,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """The content of ``training_stats.json``; ``best`` is ``(monitor, monitor_mode, best_metric, best_epoch)``."""
    monitor, mode, best_metric, best_epoch = best
    return {
        "monitor": monitor,
        "monitor_mode": mode,
        "best_metric": best_metric,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "stopped_reason": stopped_reason,
        "train_seconds": sum(float(r.get("seconds", 0.0)) for r in history),
        "seed": seed,
        "device": str(device),
        "history": list(history),  # a copy: a background write must not see later epochs
    }


@attrs.define
class Resumed:
    """What :func:`resume_from` restored besides the model, optimizer, scheduler and scaler."""

    epoch: int
    global_step: int
    history: list[dict[str, Any]]
    best_metric: float
    best_epoch: int
    best_state: dict[str, torch.Tensor] | None
    stopped_reason: str | None


def resume_from(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    callbacks: Sequence[Callback],
    callback_keys: Sequence[str],
    device: torch.device,
    meta: Mapping[str, Any],
    monitor: str,
    monitor_mode: str,
) -> Resumed:
    """Restore the full training state from ``last.pt`` (and the best weights from ``best.pt``)."""
    from mlcore.seeding import set_rng_state

    ckpt = load_checkpoint(path, map_location=device)
    old = ((ckpt["meta"].get("components") or {}).get("model") or {}).get("name")
    new = ((meta.get("components") or {}).get("model") or {}).get("name")
    if old and new and old != new:
        raise CheckpointError(
            f"cannot resume from {path}: it holds model {old!r}, not {new!r} "
            "(use another run directory or set trainer.resume=false)"
        )
    load_model_state(model, ckpt["model"], where=f"{path} (resume)", name=new or "")
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"cannot resume from {path}: optimizer/scheduler state does not fit "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); set trainer.resume=false"
        ) from None
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    worst = math.inf if monitor_mode == "min" else -math.inf
    best_metric = float(ckpt.get("best_metric", worst))
    best_epoch = int(ckpt.get("best_epoch", 0))
    if ckpt.get("monitor") and ckpt["monitor"] != monitor:
        log.warning("resuming: monitor changed from %s to %s; best metric reset", ckpt["monitor"], monitor)
        best_metric, best_epoch = worst, 0
    restore_callback_states(callbacks, callback_keys, ckpt.get("callbacks") or {})
    best_state = None
    best_path = path.parent / "best.pt"
    if best_path.exists() and best_epoch:
        best = load_checkpoint(best_path, map_location=device)
        best_state = {k: v.detach().clone() for k, v in best["model"].items()}
    if "rng" in ckpt:
        set_rng_state(ckpt["rng"])
    epoch = int(ckpt["epoch"])
    log.info("resumed from %s at epoch %d", path, epoch)
    return Resumed(
        epoch=epoch,
        global_step=int(ckpt.get("global_step", 0)),
        history=[dict(r) for r in ckpt.get("history", [])],
        best_metric=best_metric,
        best_epoch=best_epoch,
        best_state=best_state,
        stopped_reason=ckpt.get("stopped_reason"),
    )


class RunFiles:
    """The files of one run directory: ``checkpoints/last.pt``, ``checkpoints/best.pt``, ``training_stats.json``.

    Only the main process (``is_main``) writes. Checkpoints go through a :class:`CheckpointWriter`
    (on a background thread with ``background=True``); a ``training_stats.json`` update handed to
    :meth:`save` is written after the checkpoint it describes, never before.

    Each save carries a ``token`` (what the trainer needs to roll back to it); :attr:`on_disk` is the
    token of the last save whose files all reached the disk, so an interrupted or failed run
    records exactly what ``last.pt`` holds.
    """

    def __init__(self, run_dir: Path, *, is_main: bool, background: bool, on_disk: Any = None) -> None:
        self.run_dir = run_dir
        self.is_main = is_main
        self.checkpoints = run_dir / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.best = self.checkpoints / "best.pt"
        self.stats = run_dir / "training_stats.json"
        self.writer = CheckpointWriter(background=background and is_main)
        self.stats_written = -math.inf
        self.on_disk = on_disk
        self._history: list[dict[str, Any]] = []  # plain, detached copies of the records saved so far

    def prepare(self) -> None:
        """Create ``checkpoints/`` (the run files do not wait for the first checkpoint)."""
        if self.is_main:
            self.checkpoints.mkdir(parents=True, exist_ok=True)

    def save(
        self,
        *,
        model: nn.Module,
        meta: Mapping[str, Any],
        state: Mapping[str, Any],
        best: bool,
        token: Any,
        stats: Mapping[str, Any] | None = None,
    ) -> None:
        """Write ``last.pt``, make ``best.pt`` a link/copy of it when ``best``, then ``stats`` if given.

        With a background writer the state is copied here (tensors cloned) and written on its thread.
        :attr:`on_disk` becomes ``token`` once both checkpoint files are written.
        """
        if not self.is_main:
            self.on_disk = token
            return
        history = state.get("history")
        payload = checkpoint_payload(model=model, meta=meta, **{k: v for k, v in state.items() if k != "history"})
        if self.writer.background:
            payload = detached_copy(payload)
        if history is not None:
            payload["history"] = self.history_copy(history)
        last, also = self.last, self.best if best else None
        if stats is not None:
            self.stats_written = time.monotonic()

        def job() -> None:
            write_payload(last, payload)
            if also is not None:
                copy_file_atomically(last, also)
            self.on_disk = token
            if stats is not None:
                self.write_stats(stats)

        self.writer.submit(job)

    def history_copy(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A checkpoint-ready copy of ``history`` that converts only the records added since the last call.

        Records are append-only once saved, so the per-epoch cost does not grow with the epochs
        already run (the list itself is copied, not walked).
        """
        cache = self._history
        del cache[len(history) :]
        for i in range(len(cache), len(history)):
            cache.append(detached_copy(plain_values(history[i], f"history[{i}]")))
        return list(cache)

    def settle(self) -> Exception | None:
        """Wait for the pending write; returns its error instead of raising it."""
        try:
            self.writer.wait()
        except Exception as exc:
            return exc
        return None

    def stats_due(self) -> bool:
        """Whether ``STATS_EVERY_SECONDS`` have passed since ``training_stats.json`` was written."""
        return time.monotonic() - self.stats_written >= STATS_EVERY_SECONDS

    def write_stats(self, data: Mapping[str, Any], *, final: bool = False) -> None:
        """Write ``training_stats.json`` atomically; per-epoch updates skip the fsync (the final write
        and ``last.pt`` are durable), which costs more than the write itself on some disks."""
        if not self.is_main:
            return
        from mlcore.io import atomic_write_json, to_jsonable

        self.stats_written = time.monotonic()
        tmp = self.stats.with_name(f".{self.stats.name}.tmp")
        try:
            if final:
                atomic_write_json(self.stats, data)
                return
            import json

            tmp.write_text(json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
            os.replace(tmp, self.stats)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise MlcoreError(f"could not write {self.stats}: {exc.strerror or exc}") from None

    def close(self, *, quiet: bool) -> None:
        """Finish the pending checkpoint write; when the run already failed, log (not raise) its error."""
        try:
            self.writer.close()
        except Exception as exc:
            if not quiet:
                raise
            log.error("writing the last checkpoint failed too: %s", exc)

    def plot(self, history: list[dict[str, Any]]) -> None:
        """Draw ``training_curves.png`` (a failure is logged: a plot never loses a finished run)."""
        if not self.is_main or not history:
            return
        from mlcore.training.plots import plot_training_curves

        try:
            plot_training_curves(history, self.run_dir / "training_curves.png", title=self.run_dir.name)
        except Exception as exc:
            log.warning("could not draw training_curves.png: %s", exc)
