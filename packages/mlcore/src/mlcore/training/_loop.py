"""The trainer's step loop: one training epoch, validation, the optimizer step, mixed precision.

:class:`StepLoop` gets plain values (model, optimizer, device, rank, settings) and the object the
callbacks receive; it knows nothing of run files or stopping rules.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mlcore.training._distributed import DistInfo, sum_over_ranks
from mlcore.training.batches import LossModule, batch_size_of, move_to_device, split_loss
from mlcore.training.callbacks import Callback

if TYPE_CHECKING:
    from mlcore.training.callbacks import TrainerView

log = logging.getLogger(__name__)

#: Without clipping and without a callback that needs it, the gradient norm is measured on every
#: GRAD_NORM_EVERY-th optimizer step of an epoch (the first one included): it reads every gradient
#: once, which costs a few % of a step for small models.
GRAD_NORM_EVERY = 10
_NULL_CONTEXT = contextlib.nullcontext()


class TimeUp(Exception):
    """Raised inside an epoch when the wall-clock limit is reached."""


class StopRequested(Exception):
    """Raised inside an epoch when an interrupt (SIGINT/SIGTERM) asked the run to stop."""


def amp_setup(amp: bool, device: torch.device) -> tuple[torch.dtype | None, Any]:
    """(autocast dtype, GradScaler or None) for ``device``: fp16 + scaler on CUDA, bf16 on CPU."""
    if not amp:
        return None, None
    if device.type == "cuda":
        return torch.float16, torch.amp.GradScaler("cuda")
    if device.type == "cpu":
        return torch.bfloat16, None
    log.warning("amp is not supported on %s: training in float32", device.type)
    return None, None


def overrides(callback: Callback, hook: str) -> bool:
    """Whether ``callback`` overrides ``hook`` of the :class:`Callback` base."""
    return getattr(type(callback), hook, None) is not getattr(Callback, hook)


def total_norm(grads: list[torch.Tensor], uniform: bool = False) -> torch.Tensor:
    """Global L2 norm of the gradients (what ``clip_grad_norm_`` computes, without scaling).

    ``uniform`` (all on one device with one dtype) takes a fused fast path.
    """
    if uniform and hasattr(torch, "_foreach_norm"):
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)
    if get_total_norm is not None:
        return get_total_norm(grads)  # type: ignore[no-any-return]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class StepLoop:
    """Training epochs and validation for one :meth:`Trainer.fit`.

    Args:
        model: the model being trained (the callbacks see it as ``trainer.model``).
        loss: the loss function (see :class:`~mlcore.training.batches.LossModule`).
        optimizer, scaler: the optimizer and the AMP ``GradScaler`` (or ``None``).
        amp_dtype: the autocast dtype, ``None`` for full precision.
        device, dist: where this rank trains and its place in a DDP launch.
        grad_clip, accumulate, epochs: settings of the trainer config.
        callbacks: all callbacks; only those overriding per-step hooks are called per step.
        host: what the callbacks receive as ``trainer``.
        progress: show a progress bar (on a terminal only).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        loss: Any,
        optimizer: torch.optim.Optimizer,
        scaler: Any,
        amp_dtype: torch.dtype | None,
        device: torch.device,
        dist: DistInfo,
        grad_clip: float,
        accumulate: int,
        epochs: int,
        callbacks: Sequence[Callback],
        host: TrainerView,
        progress: bool,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scaler = scaler
        self.amp_dtype = amp_dtype
        self.device = device
        self.dist = dist
        self.grad_clip = grad_clip
        self.accumulate = accumulate
        self.epochs = epochs
        self.host = host
        self.progress = progress
        self.global_step = 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.uniform_params = len({(p.device, p.dtype) for p in self.params}) == 1
        self.loss_module = LossModule(model, loss)
        self.ddp: Any = None
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.loss_module, device_ids=ids)
        # per-step hooks: only the callbacks that override them (keeps the step loop lean), and of
        # those only the ones that want steps in the current epoch (see Callback.wants_step_hooks)
        self._batch_end_all = [cb for cb in callbacks if overrides(cb, "on_batch_end")]
        self._pre_step_all = [cb for cb in callbacks if overrides(cb, "on_before_optimizer_step")]
        self.batch_end_callbacks: list[Callback] = []
        self.pre_step_callbacks: list[Callback] = []
        self.norm_every = GRAD_NORM_EVERY

    def _select_step_hooks(self, epoch: int) -> None:
        self.batch_end_callbacks = [cb for cb in self._batch_end_all if cb.wants_step_hooks(epoch)]
        self.pre_step_callbacks = [cb for cb in self._pre_step_all if cb.wants_step_hooks(epoch)]
        self.norm_every = 1 if self.grad_clip > 0 or self.pre_step_callbacks else GRAD_NORM_EVERY

    def autocast(self) -> Any:
        """The autocast context of the forward pass (a no-op context in full precision)."""
        if self.amp_dtype is None:
            return _NULL_CONTEXT
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def train_epoch(
        self, loader: Any, epoch: int, deadline: float | None, stop_requested: Callable[[], bool] | None = None
    ) -> dict[str, Any]:
        """Train one epoch; returns ``train_loss``, ``train_<extra>``, ``grad_norm``, ``grad_norm_max``.

        Raises :class:`TimeUp` past ``deadline`` and :class:`StopRequested` when ``stop_requested()``
        turns true (both checked before each batch, so the optimizer step in progress completes).
        """
        model, opt = self.model, self.optimizer
        model.train()
        self._select_step_hooks(epoch)
        accum = self.accumulate
        n = len(loader)
        losses: list[torch.Tensor] = []  # per-batch losses, summed once at the end (no per-step sync)
        sizes: list[int] = []
        extras: dict[str, float] = {}
        norm_sum = 0.0
        norm_max = 0.0
        norm_steps = 0
        norms: list[torch.Tensor] = []
        steps = 0
        show = self.progress and self.dist.is_main and sys.stderr.isatty()
        iterator: Any = loader
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = iterator = tqdm(loader, desc=f"epoch {epoch}/{self.epochs}", leave=False, dynamic_ncols=True)
        non_blocking = self.device.type == "cuda"
        opt.zero_grad(set_to_none=True)
        try:
            for i, batch in enumerate(iterator):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeUp
                if stop_requested is not None and stop_requested():
                    raise StopRequested
                batch = move_to_device(batch, self.device, non_blocking)
                bs = batch_size_of(batch)
                with self.autocast():
                    loss, logs = split_loss(self._forward(batch))
                group = min(accum, n - (i // accum) * accum)
                scaled = loss / group if group > 1 else loss
                if self.scaler is not None:
                    self.scaler.scale(scaled).backward()
                else:
                    scaled.backward()
                if (i + 1) % accum == 0 or i + 1 == n:
                    norm = self.optimizer_step(steps % self.norm_every == 0)
                    steps += 1
                    if norm is not None:
                        norms.append(norm)
                detached = loss.detach()
                losses.append(detached)
                sizes.append(bs)
                for k, v in logs.items():
                    extras[k] = extras.get(k, 0.0) + float(v) * bs
                for cb in self.batch_end_callbacks:
                    cb.on_batch_end(self.host, i, detached, logs)
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
        totals = sum_over_ranks(torch.tensor(values, dtype=torch.float64), self.dist, self.device)
        total_count = max(float(totals[1]), 1.0)
        out: dict[str, Any] = {"train_loss": float(totals[0]) / total_count}
        for j, k in enumerate(sorted(extras)):
            out[f"train_{k}"] = float(totals[2 + j]) / total_count
        out["grad_norm"] = norm_sum / norm_steps if norm_steps else None
        out["grad_norm_max"] = norm_max if norm_steps else None
        return out

    def _forward(self, batch: Any) -> Any:
        if self.ddp is not None:
            return self.ddp(batch)
        return self.loss_module.forward(batch)  # the wrapper has no hooks; the model is called normally

    def optimizer_step(self, measure: bool) -> torch.Tensor | None:
        """Unscale, clip, step; returns the pre-clip gradient norm when measured (always when clipping)."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm: torch.Tensor | None = None
        if self.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        elif measure or self.pre_step_callbacks:
            grads = [p.grad for p in self.params if p.grad is not None]
            norm = total_norm(grads, self.uniform_params) if grads else torch.zeros((), device=self.device)
        for cb in self.pre_step_callbacks:
            cb.on_before_optimizer_step(self.host, norm)  # type: ignore[arg-type]
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        return norm.detach() if norm is not None else None

    @torch.no_grad()
    def validate(self, loader: Any, stop_requested: Callable[[], bool] | None = None) -> dict[str, Any]:
        """``{"val_loss": ..., "val_<extra>": ...}`` over ``loader`` (:class:`StopRequested` as in training)."""
        model = self.model
        model.eval()
        loss_sum = 0.0
        count = 0
        extras: dict[str, float] = {}
        for batch in loader:
            if stop_requested is not None and stop_requested():
                raise StopRequested
            batch = move_to_device(batch, self.device, self.device.type == "cuda")
            bs = batch_size_of(batch)
            with self.autocast():
                loss, logs = split_loss(self.loss_module(batch))
            loss_sum += float(loss) * bs
            count += bs
            for k, v in logs.items():
                extras[k] = extras.get(k, 0.0) + float(v) * bs
        count = max(count, 1)
        return {"val_loss": loss_sum / count, **{f"val_{k}": v / count for k, v in sorted(extras.items())}}


def overruns(started: float, limit: float, epoch_times: list[float], last_epoch_seconds: float) -> bool:
    """Whether the next epoch (estimated by the slowest so far) would end after ``limit`` seconds (0 = none)."""
    if limit <= 0:
        return False
    estimate = max(epoch_times) if epoch_times else last_epoch_seconds
    return time.monotonic() - started + estimate > limit


def epoch_scalars(record: Mapping[str, Any]) -> dict[str, float | None]:
    """The tracker scalars of an epoch record (``loss/train``, ``loss/val``, ``lr``, ``metrics/<name>``...)."""
    names = {"train_loss": "loss/train", "val_loss": "loss/val", "lr": "lr", "seconds": "time/epoch_seconds"}
    out: dict[str, float | None] = {}
    for k, v in record.items():
        if k == "epoch" or not isinstance(v, int | float) or isinstance(v, bool):
            continue
        out[names.get(k, f"metrics/{k}")] = float(v)
    return out


def epoch_line(record: Mapping[str, Any], epochs: int, *, is_best: bool) -> str:
    """The one log line of an epoch (``epoch 3/10  train_loss=...  val_loss=...  lr=...  0.4s  *best*``)."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"train_loss={record['train_loss']:.4g}"]
    if record.get("val_loss") is not None:
        parts.append(f"val_loss={record['val_loss']:.4g}")
    parts.append(f"lr={record['lr']:.3g}")
    for k, v in record.items():
        if k not in ("epoch", "train_loss", "val_loss", "lr", "seconds", "grad_norm_max") and isinstance(v, float):
            parts.append(f"{k}={v:.4g}")
    parts.append(f"{record['seconds']:.1f}s")
    if is_best:
        parts.append("*best*")
    return "  ".join(parts)
