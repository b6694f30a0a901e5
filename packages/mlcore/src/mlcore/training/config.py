"""The generic trainer's config: every field typed, validated and with a working default.

Bad values give a one-line :class:`~mlcore.errors.ConfigError` naming the field when the
config is built with :func:`mlcore.config.structure` (e.g. ``trainer.lr=-1 is out of range``).
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from mlcore.config import in_range, non_negative, one_of, positive

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULERS = ("cosine", "step", "plateau", "none")
MONITOR_MODES = ("min", "max")
#: Largest accepted learning rate and weight decay: far beyond any that trains, small enough that
#: a typo such as ``1e308`` is refused before it overflows the optimizer.
MAX_LR = 100.0
MAX_WEIGHT_DECAY = 100.0


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _workers(inst: object, attribute: attrs.Attribute, value: object) -> None:  # type: ignore[type-arg]
    """Validator: 0 <= num_workers <= the CPUs of this machine (more only queue and can exhaust memory)."""
    non_negative(inst, attribute, value)
    cpus = usable_cpus()
    if isinstance(value, int) and value > cpus:
        raise ValueError(
            f"{attribute.name}={value} is more than the {cpus} CPUs this process may use (allowed: 0..{cpus})"
        )


def _names(inst: object, attribute: attrs.Attribute, value: object) -> None:  # type: ignore[type-arg]
    """Validator: a list of non-empty component names without duplicates."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{attribute.name}={value!r} must be a list of registered names")
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise ValueError(f"{attribute.name}={value!r} names {dup[0]!r} twice")


def callback_entry(entry: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, options)`` of one ``trainer.callbacks`` entry: ``"name"`` or ``{name = "...", option = ...}``."""
    if isinstance(entry, str):
        return entry, {}
    options = dict(entry)
    return options.pop("name"), options


def _callbacks(inst: object, attribute: attrs.Attribute, value: object) -> None:  # type: ignore[type-arg]
    """Validator: callback names, or tables ``{name = ..., <option> = ...}`` checked against the callback's config."""
    if not isinstance(value, list):
        raise ValueError(f"{attribute.name}={value!r} must be a list of callback names or tables")
    names = []
    for i, entry in enumerate(value):
        if isinstance(entry, dict):
            if not isinstance(entry.get("name"), str) or not entry["name"]:
                raise ValueError(f'{attribute.name}[{i}]={entry!r} needs a name = "<callback>" entry')
        elif not isinstance(entry, str) or not entry:
            raise ValueError(f"{attribute.name}[{i}]={entry!r} must be a callback name or a table with a name")
        names.append(callback_entry(entry)[0])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{attribute.name}={value!r} names {dup[0]!r} twice")
    for entry in value:
        name, options = callback_entry(entry)
        if options:  # a table: its options are checked now, against the callback's config class
            callback_config(name, options)


def callback_config(name: str, options: dict[str, Any]) -> Any:
    """The config of registered callback ``name`` built strictly from ``options`` (``None`` without a config).

    Unknown names, unknown options and bad values are one-line ConfigErrors naming
    ``trainer.callbacks.<name>.<option>``.
    """
    from mlcore.errors import ConfigError, MlcoreError
    from mlcore.registry import get_registry

    try:
        spec = get_registry().get("callback", name)
    except MlcoreError as exc:
        raise ConfigError(f"trainer.callbacks: {exc}") from None
    if spec.config is None:
        if options:
            raise ConfigError(
                f"trainer.callbacks.{name}: callback {name!r} takes no options (got {', '.join(sorted(options))})"
            )
        return None
    return spec.make_config(options, where=f"trainer.callbacks.{name}.")


@attrs.define
class TrainerConfig:
    """Settings of :class:`mlcore.training.Trainer` (the ``[trainer]`` table of a run config).

    Attributes:
        epochs: maximum number of epochs.
        batch_size: training batch size; ``eval_batch_size`` 0 means the same.
        optimizer: ``adam`` | ``adamw`` | ``rmsprop`` | ``sgd`` (``momentum`` for the last two).
        lr, weight_decay, momentum: optimizer settings (``lr`` in (0, 100], ``weight_decay`` in [0, 100]).
        scheduler: ``cosine`` | ``step`` | ``plateau`` | ``none``, stepped once per epoch, after a
            linear warm-up of ``warmup_epochs`` epochs; ``step_size``/``gamma`` for ``step``,
            ``plateau_patience``/``gamma`` for ``plateau``, ``min_lr`` floor for cosine/plateau.
        patience: early stopping after this many epochs without improvement of ``monitor`` by
            more than ``min_delta`` (0 = off). ``monitor`` is ``val_loss``, ``train_loss`` or any
            logged value (``val_<name>``/``train_<name>``); ``monitor_mode`` is ``min`` or ``max``.
            Without a validation set ``val_loss`` falls back to ``train_loss``.
        grad_clip: maximum global gradient norm (0 = off).
        accumulate_grad_batches: optimizer step every N batches.
        amp: mixed precision (bf16 autocast on CPU, fp16 autocast + GradScaler on CUDA).
        max_time_minutes: wall-clock limit; training stops cleanly before it (0 = none).
        deterministic: force deterministic kernels.
        num_workers: DataLoader worker processes (at most the CPUs this process may use).
        progress: progress bars with live loss.
        trackers: registered tracker names (``mlcore list tracker``).
        callbacks: registered callbacks (``mlcore list callback``), each a name (default options) or a
            table naming it and setting options of its config class, e.g.
            ``callbacks = ["lr_warmup_log", {name = "early_stopping", patience = 3}]``.
        resume: continue from ``<run_dir>/checkpoints/last.pt`` when it exists.
        plot: draw ``training_curves.png``.
        async_checkpoint: write each epoch's checkpoint on a background thread (a snapshot of the
            state is taken first, so the next epoch starts at once); writes stay atomic and in
            order, and ``fit`` returns only after the last one is on disk. ``false`` writes inline.
    """

    epochs: int = attrs.field(default=10, validator=positive)
    batch_size: int = attrs.field(default=64, validator=positive)
    eval_batch_size: int = attrs.field(default=0, validator=non_negative)
    optimizer: str = attrs.field(default="adam", validator=one_of(*OPTIMIZERS))
    lr: float = attrs.field(default=1e-3, validator=in_range(0.0, MAX_LR, low_open=True))
    weight_decay: float = attrs.field(default=0.0, validator=in_range(0.0, MAX_WEIGHT_DECAY))
    momentum: float = attrs.field(default=0.9, validator=in_range(0.0, 1.0, high_open=True))
    scheduler: str = attrs.field(default="cosine", validator=one_of(*SCHEDULERS))
    warmup_epochs: int = attrs.field(default=0, validator=non_negative)
    step_size: int = attrs.field(default=30, validator=positive)
    gamma: float = attrs.field(default=0.1, validator=in_range(0.0, 1.0, low_open=True))
    plateau_patience: int = attrs.field(default=5, validator=non_negative)
    min_lr: float = attrs.field(default=0.0, validator=non_negative)
    patience: int = attrs.field(default=0, validator=non_negative)
    min_delta: float = attrs.field(default=0.0, validator=non_negative)
    monitor: str = attrs.field(default="val_loss")
    monitor_mode: str = attrs.field(default="min", validator=one_of(*MONITOR_MODES))
    grad_clip: float = attrs.field(default=0.0, validator=non_negative)
    accumulate_grad_batches: int = attrs.field(default=1, validator=positive)
    amp: bool = False
    max_time_minutes: float = attrs.field(default=0.0, validator=non_negative)
    deterministic: bool = False
    num_workers: int = attrs.field(default=0, validator=_workers)
    progress: bool = True
    trackers: list[str] = attrs.field(factory=lambda: ["tensorboard"], validator=_names)
    callbacks: list[str | dict[str, Any]] = attrs.field(factory=lambda: ["grad_histograms"], validator=_callbacks)
    resume: bool = True
    plot: bool = True
    async_checkpoint: bool = True

    @monitor.validator
    def _check_monitor(self, attribute: attrs.Attribute, value: str) -> None:  # type: ignore[type-arg]
        if not isinstance(value, str) or not value.startswith(("val_", "train_")):
            raise ValueError(
                f"monitor={value!r} is not allowed (allowed: val_loss, train_loss, or a logged val_<name>/train_<name>)"
            )

    def __attrs_post_init__(self) -> None:
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr={self.min_lr!r} is above lr={self.lr!r} (allowed: min_lr <= lr)")

    @property
    def eval_batch(self) -> int:
        """The validation batch size (``eval_batch_size`` or ``batch_size``)."""
        return self.eval_batch_size or self.batch_size
