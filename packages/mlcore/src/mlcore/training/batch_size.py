"""The largest training batch that fits: double until it does not, then back off (``mlcore find-batch-size``).

Like Lightning's ``Tuner.scale_batch_size(mode="binsearch")``: starting from ``init``, each trial
runs ``steps`` real training steps (forward, the loss contract of
:class:`~mlcore.training.batches.LossModule`, backward, an Adam step) on a batch of that size;
the size doubles while it fits, and after the first failure a binary search between the last
size that fit and the first that did not finds the largest one. The model's weights are restored
afterwards.

What "fits" means:

- on CUDA, the step runs without an out-of-memory error and its peak allocated memory
  (``torch.cuda.max_memory_allocated``) stays within the budget (default: the whole device);
- on CPU (and MPS), the step's memory, measured as parameters + gradients + optimizer state +
  the tensors autograd saves for backward + the batch itself, stays within the budget (default:
  half of the memory available now, ``MemAvailable``). A real out-of-memory error also counts as
  not fitting.

Example::

    from mlcore.training.batch_size import find_batch_size
    found = find_batch_size(model, data, torch.nn.MSELoss(), memory_budget="2GB")
    print(found.batch_size, found.limit)     # e.g. 4096 "memory budget"
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from mlcore.errors import ConfigError, DataError, MlcoreError
from mlcore.training.batches import LossModule, move_to_device, split_loss

__all__ = ["BatchSizeResult", "Trial", "find_batch_size", "find_run_batch_size", "parse_memory", "step_memory"]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30}


@attrs.frozen
class Trial:
    """One tried batch size: whether it fitted, the memory its step used (bytes), and why not."""

    batch_size: int
    fits: bool
    memory: int | None
    reason: str = ""


@attrs.frozen
class BatchSizeResult:
    """The largest batch size that fitted, what stopped the search, and every trial.

    ``limit`` is ``"memory"`` (the next size did not fit), ``"dataset"`` (the training split has no
    more samples) or ``"max_batch_size"`` (the upper bound asked for).
    """

    batch_size: int
    limit: str
    device: str
    budget: int | None
    trials: list[Trial]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "batch_size": self.batch_size,
            "limit": self.limit,
            "device": self.device,
            "budget_bytes": self.budget,
            "trials": [attrs.asdict(t) for t in self.trials],
        }


def parse_memory(value: int | float | str, *, where: str = "memory_budget") -> int:
    """Bytes of ``2GB``, ``512MiB``, ``1e9`` or a plain number; a one-line ConfigError otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}={value!r}: expected a size such as 2GB or 512MiB")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ConfigError(f"{where}={value!r}: expected a size such as 2GB, 512MiB or a number of bytes")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise ConfigError(f"{where}={value!r}: must be more than 0 bytes")
    return size


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (Linux ``MemAvailable``; psutil elsewhere)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def _tensor_bytes(obj: Any, seen: set[int]) -> int:
    if isinstance(obj, torch.Tensor):
        key = obj.untyped_storage().data_ptr() if obj.device.type != "meta" else id(obj)
        if key in seen:
            return 0
        seen.add(key)
        return obj.untyped_storage().nbytes()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v, seen) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_tensor_bytes(v, seen) for v in obj)
    return 0


def step_memory(module: nn.Module, batch: Any, optimizer: torch.optim.Optimizer) -> int:
    """Bytes one training step holds at its peak: parameters, gradients, optimizer state, the tensors
    autograd saves for backward and the batch (each storage counted once). Runs the step."""
    seen: set[int] = set()
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += _tensor_bytes(t, seen)
        return t

    base = _tensor_bytes(list(module.parameters()), seen) + _tensor_bytes(batch, seen)
    optimizer.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = split_loss(module(batch))
    loss.backward()
    optimizer.step()
    grads = _tensor_bytes([p.grad for p in module.parameters() if p.grad is not None], seen)
    state = _tensor_bytes([dict(s) for s in optimizer.state.values()], seen)
    return base + saved + grads + state


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _batch_of(dataset: Any, size: int, collate: Callable[[list[Any]], Any] | None) -> Any:
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=size, shuffle=False, collate_fn=collate)
    return next(iter(loader))


def find_batch_size(
    model: nn.Module,
    data: Any,
    loss_fn: Callable[..., Any] | None = None,
    *,
    device: str | torch.device = "auto",
    init: int = 2,
    max_batch_size: int | None = None,
    memory_budget: int | float | str | None = None,
    steps: int = 1,
    max_trials: int = 25,
) -> BatchSizeResult:
    """The largest batch size of ``data``'s training split whose training step fits in memory.

    ``data`` is a :class:`~mlcore.data.DataModule` (prepared here) or a dataset; ``loss_fn`` the
    loss (``None`` when the model has ``compute_loss``). ``memory_budget``: bytes or a size string
    (``"2GB"``); default: the CUDA device's total memory, else half of the available memory.
    Raises :class:`~mlcore.errors.MlcoreError` when not even ``init`` fits.
    """
    from mlcore.devices import resolve_device

    for name, value in (("init", init), ("steps", steps), ("max_trials", max_trials)):
        if value < 1:
            raise ConfigError(f"{name}={value}: must be at least 1")
    if max_batch_size is not None and max_batch_size < init:
        raise ConfigError(f"max_batch_size={max_batch_size}: must be at least init={init}")
    torch_device = device if isinstance(device, torch.device) else resolve_device(str(device))
    if hasattr(data, "train_set"):
        if hasattr(data, "prepare"):
            data = data.prepare()
        dataset, collate = data.train_set(), getattr(data, "collate_fn", None)
    else:
        dataset, collate = data, None
    n_samples = len(dataset)
    if n_samples < 1:
        raise DataError("the training split is empty: no batch size can be found")
    cuda = torch_device.type == "cuda"
    if memory_budget is not None:
        budget: int | None = parse_memory(memory_budget)
    elif cuda:
        budget = torch.cuda.get_device_properties(torch_device).total_memory
    else:
        free = available_memory()
        budget = free // 2 if free else None
    upper = min(n_samples, max_batch_size) if max_batch_size is not None else n_samples
    upper_reason = "dataset" if max_batch_size is None or n_samples <= max_batch_size else "max_batch_size"

    saved_state = copy.deepcopy(model.state_dict())
    was_training = model.training
    model.to(torch_device).train()
    module = LossModule(model, loss_fn)
    trials: list[Trial] = []

    def trial(size: int) -> bool:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-12)
        memory: int | None = None
        reason = ""
        try:
            batch = move_to_device(_batch_of(dataset, size, collate), torch_device)
            for _ in range(steps):
                if cuda:
                    torch.cuda.reset_peak_memory_stats(torch_device)
                    step_memory(module, batch, optimizer)
                    torch.cuda.synchronize(torch_device)
                    memory = max(memory or 0, torch.cuda.max_memory_allocated(torch_device))
                else:
                    memory = max(memory or 0, step_memory(module, batch, optimizer))
            fits = budget is None or memory is None or memory <= budget
            if not fits:
                reason = f"needs {_fmt(memory)} > budget {_fmt(budget)}"
        except Exception as exc:
            if not _is_oom(exc):
                raise
            fits, reason = False, f"out of memory ({str(exc).splitlines()[0][:80]})"
        finally:
            del optimizer
            model.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.empty_cache()
        trials.append(Trial(size, fits, memory, reason))
        return fits

    try:
        size = min(init, upper)
        if not trial(size):
            raise MlcoreError(
                f"batch size {size} does not fit on {torch_device} ({trials[-1].reason}); "
                "use a smaller model, a larger memory_budget or another device"
            )
        good, bad = size, None
        while good < upper and len(trials) < max_trials:
            size = min(good * 2, upper)
            if trial(size):
                good = size
            else:
                bad = size
                break
        while bad is not None and bad - good > 1 and len(trials) < max_trials:
            mid = (good + bad) // 2
            if trial(mid):
                good = mid
            else:
                bad = mid
        limit = "memory" if bad is not None else upper_reason if good == upper else "max_trials"
    finally:
        model.load_state_dict(saved_state)
        model.train(was_training)
    return BatchSizeResult(good, limit, str(torch_device), budget, trials)


def find_run_batch_size(
    plugin: str | None = None,
    *,
    pipeline: str | None = None,
    profile: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    device: str = "auto",
    **options: Any,
) -> BatchSizeResult:
    """:func:`find_batch_size` for a plugin's supervised recipe pipeline, built as ``mlcore run`` would
    build it (same config resolution), without running it (``mlcore find-batch-size``).

    ``options`` are :func:`find_batch_size`'s keywords (``memory_budget``, ``max_batch_size``, ...).
    """
    import tempfile

    from mlcore import api
    from mlcore.pipelines.recipe import RecipePipeline
    from mlcore.runs import RunContext
    from mlcore.seeding import seed_everything

    resolved = api.resolve(plugin, pipeline=pipeline, profile=profile, config=config, overrides=overrides)
    pipe = resolved.spec.build(resolved.config)
    if not isinstance(pipe, RecipePipeline):
        raise ConfigError(
            f"pipeline {resolved.settings.pipeline!r} of plugin {resolved.settings.plugin!r} is not a supervised "
            "recipe; call mlcore.training.batch_size.find_batch_size(model, data, loss) from Python instead"
        )
    seed_everything(resolved.settings.seed)
    from mlcore.devices import resolve_device

    torch_device = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(
            out_dir=Path(tmp),
            device=torch_device,
            seed=resolved.settings.seed,
            plugin=resolved.settings.plugin,
            pipeline=resolved.settings.pipeline,
            profile=resolved.settings.profile,
            config=resolved.config,
            progress=False,
        )
        parts = pipe.build(ctx)
    return find_batch_size(parts.model, parts.data, parts.loss, device=torch_device, **options)


def _fmt(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"
