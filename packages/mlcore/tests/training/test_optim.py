"""Tests of mlcore.training.optim: optimizer factory, schedulers with linear warm-up, their state."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from mlcore.errors import ConfigError
from mlcore.training.config import TrainerConfig
from mlcore.training.optim import EpochScheduler, build_optimizer, build_scheduler


def params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(3))]


def lrs(config: TrainerConfig, epochs: int, metrics: list[float] | None = None) -> list[float]:
    """The learning rate used in each epoch."""
    opt = build_optimizer(params(), config)
    sched = build_scheduler(opt, config)
    out = []
    for e in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(metrics[e] if metrics else None)
    return out


@pytest.mark.parametrize(
    ("name", "cls", "extra"),
    [
        ("adam", torch.optim.Adam, {}),
        ("adamw", torch.optim.AdamW, {}),
        ("rmsprop", torch.optim.RMSprop, {"momentum": 0.5}),
        ("sgd", torch.optim.SGD, {"momentum": 0.5}),
    ],
)
def test_build_optimizer(name: str, cls: type, extra: dict[str, Any]) -> None:
    opt = build_optimizer(params(), TrainerConfig(optimizer=name, lr=0.02, weight_decay=0.1, momentum=0.5))
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.02 and group["weight_decay"] == 0.1
    for k, v in extra.items():
        assert group[k] == v


def test_unknown_names_raise_config_errors() -> None:
    cfg = TrainerConfig()
    object.__setattr__(cfg, "optimizer", "lion")
    with pytest.raises(ConfigError, match="optimizer='lion' is not allowed"):
        build_optimizer(params(), cfg)
    object.__setattr__(cfg, "optimizer", "adam")
    object.__setattr__(cfg, "scheduler", "onecycle")
    with pytest.raises(ConfigError, match="scheduler='onecycle' is not allowed"):
        build_scheduler(build_optimizer(params(), cfg), cfg)


def test_none_is_constant() -> None:
    assert lrs(TrainerConfig(scheduler="none", lr=0.1), 4) == [0.1] * 4


def test_linear_warmup_then_constant() -> None:
    got = lrs(TrainerConfig(scheduler="none", lr=0.3, warmup_epochs=2), 5)
    assert got == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.3])


def test_cosine_with_warmup_reaches_min_lr() -> None:
    cfg = TrainerConfig(scheduler="cosine", lr=1.0, warmup_epochs=2, epochs=6, min_lr=0.1)
    got = lrs(cfg, 7)
    expected_cos = [0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert got == pytest.approx([1 / 3, 2 / 3, *expected_cos])
    assert got[-1] == pytest.approx(0.1)


def test_step_decay() -> None:
    got = lrs(TrainerConfig(scheduler="step", lr=1.0, step_size=2, gamma=0.5), 6)
    assert got == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])


def test_plateau_reduces_on_stagnation_after_warmup() -> None:
    cfg = TrainerConfig(scheduler="plateau", lr=1.0, gamma=0.5, plateau_patience=1, warmup_epochs=1, min_lr=0.2)
    metrics = [5.0] + [4.0] * 9
    got = lrs(cfg, 10, metrics)
    assert got[0] == pytest.approx(0.5) and got[1] == pytest.approx(1.0)
    assert got[2] == pytest.approx(1.0)  # 4.0 at epoch 2 is an improvement over 5.0
    # patience 1: the lr halves after every second epoch without improvement, down to min_lr
    assert got[2:] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2])
    assert build_scheduler(build_optimizer(params(), cfg), cfg).needs_metric


def test_plateau_mode_max_follows_monitor_mode() -> None:
    cfg = TrainerConfig(scheduler="plateau", lr=1.0, gamma=0.5, plateau_patience=0, monitor_mode="max")
    assert lrs(cfg, 3, [1.0, 2.0, 3.0]) == [1.0, 1.0, 1.0]
    assert lrs(cfg, 4, [3.0, 2.0, 1.0, 1.0]) == pytest.approx([1.0, 1.0, 0.5, 0.25])


@pytest.mark.parametrize("name", ["cosine", "step", "plateau", "none"])
def test_state_dict_resumes_the_same_schedule(name: str) -> None:
    cfg = TrainerConfig(scheduler=name, lr=1.0, warmup_epochs=2, epochs=8, step_size=2, plateau_patience=0)
    metrics = [3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    full = lrs(cfg, 8, metrics)

    opt = build_optimizer(params(), cfg)
    sched = build_scheduler(opt, cfg)
    for e in range(3):
        opt.step()
        sched.step(metrics[e])
    state_opt, state_sched = opt.state_dict(), sched.state_dict()

    opt2 = build_optimizer(params(), cfg)
    sched2 = build_scheduler(opt2, cfg)
    opt2.load_state_dict(state_opt)
    sched2.load_state_dict(state_sched)
    rest = []
    for e in range(3, 8):
        rest.append(opt2.param_groups[0]["lr"])
        opt2.step()
        sched2.step(metrics[e])
    assert rest == pytest.approx(full[3:])
    assert isinstance(sched2, EpochScheduler) and sched2.get_last_lr() == [opt2.param_groups[0]["lr"]]
