"""Tests of mlcore.training.callbacks: hook order, stopping, the built-in callbacks."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from mlcore.registry import Registry, get_registry
from mlcore.training import Callback, EarlyStopping, Trainer
from mlcore.training.callbacks import GradientHistogramCallback, LearningRateLogger

from .conftest import RecordingTracker


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.result: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.events.append("fit_start")

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.events.append(f"epoch_start{epoch}")

    def on_before_optimizer_step(self, trainer: Trainer, grad_norm: torch.Tensor) -> None:
        assert all(p.grad is not None for p in trainer.model.parameters())
        self.events.append("opt")

    def on_batch_end(self, trainer: Trainer, batch_idx: int, loss: torch.Tensor, logs: dict[str, float]) -> None:
        assert not loss.requires_grad
        self.events.append("batch")

    def on_validation_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        assert set(metrics) == {"val_loss"}
        self.events.append(f"val{epoch}")

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        assert record["epoch"] == epoch and trainer.history[-1] is record
        self.events.append(f"epoch_end{epoch}")

    def on_fit_end(self, trainer: Trainer, result: Any) -> None:
        self.result = result
        self.events.append("fit_end")


def test_hooks_run_in_order(fit_tiny: Any) -> None:
    rec = Recorder()
    result, _, _ = fit_tiny(epochs=2, batch_size=36, accumulate_grad_batches=2, cbs=(rec,))  # 72 samples: 2 batches
    per_epoch = ["batch", "opt", "batch"]  # the optimizer steps before the second batch's on_batch_end
    assert rec.events == [
        "fit_start",
        "epoch_start1",
        *per_epoch,
        "val1",
        "epoch_end1",
        "epoch_start2",
        *per_epoch,
        "val2",
        "epoch_end2",
        "fit_end",
    ]
    assert rec.result is result


def test_accumulation_steps_the_optimizer_every_n_batches(fit_tiny: Any) -> None:
    rec = Recorder()
    fit_tiny(epochs=1, batch_size=8, accumulate_grad_batches=4, cbs=(rec,))  # 9 batches -> steps in batches 4, 8, 9
    assert rec.events.count("batch") == 9 and rec.events.count("opt") == 3
    positions = [i for i, e in enumerate(rec.events) if e == "opt"]
    batches_before = [rec.events[:p].count("batch") for p in positions]
    assert batches_before == [3, 7, 8]  # on_batch_end of the stepping batch comes after the step


def test_a_callback_can_stop_training(fit_tiny: Any) -> None:
    class StopAt2(Callback):
        def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
            if epoch == 2:
                trainer.should_stop = True

    result, _, _ = fit_tiny(epochs=5, cbs=(StopAt2(),))
    assert result.epochs_run == 2 and result.stopped_reason == "early_stopping"


def test_early_stopping_logic_and_state() -> None:
    class T:
        should_stop = False
        stop_reason = ""

    es = EarlyStopping("val_loss", patience=2, min_delta=0.1, mode="min")
    t = T()
    for epoch, value in enumerate([1.0, 0.95, 0.85, 0.84], start=1):
        es.on_epoch_end(t, epoch, {"val_loss": value})  # type: ignore[arg-type]
    # 0.95 is within min_delta of 1.0 (wait 1), 0.85 improves, 0.84 does not (wait 1)
    assert not t.should_stop and es.best == 0.85 and es.wait == 1
    state = es.state_dict()
    es2 = EarlyStopping("val_loss", patience=2, min_delta=0.1)
    es2.load_state_dict(state)
    es2.on_epoch_end(t, 5, {"val_loss": 0.80})  # type: ignore[arg-type]
    assert t.should_stop and t.stop_reason == "early_stopping" and es2.stopped_epoch == 5
    up = EarlyStopping("val_acc", patience=1, mode="max")
    t2 = T()
    up.on_epoch_end(t2, 1, {"val_acc": 0.5})  # type: ignore[arg-type]
    up.on_epoch_end(t2, 2, {"val_acc": 0.6})  # type: ignore[arg-type]
    up.on_epoch_end(t2, 3, {"val_acc": float("nan")})  # type: ignore[arg-type]
    assert not t2.should_stop
    up.on_epoch_end(t2, 4, {"val_acc": 0.6})  # type: ignore[arg-type]
    assert t2.should_stop
    with pytest.raises(ValueError, match="mode='avg'"):
        EarlyStopping(mode="avg")


def test_builtin_callbacks_are_registered(test_registry: Registry) -> None:
    assert isinstance(get_registry().get("callback", "grad_histograms").build(), GradientHistogramCallback)
    assert isinstance(get_registry().get("callback", "lr_warmup_log").build(), LearningRateLogger)


def test_gradient_histograms_reach_the_trackers(fit_tiny: Any) -> None:
    fit_tiny(epochs=2, trackers=["recorder"], callbacks=[{"name": "grad_histograms", "every_n_epochs": 1}])
    (tracker,) = RecordingTracker.instances
    names = {(name, step) for name, _, step in tracker.histograms}
    for step in (1, 2):
        assert ("grad_norm/global", step) in names
        assert ("grad_norm/net.0.weight", step) in names and ("weights/net.3.bias", step) in names
    glob = next(v for name, v, step in tracker.histograms if name == "grad_norm/global" and step == 1)
    assert glob.numel() == 5 and bool((glob > 0).all())  # 72 samples / 16 = 5 steps
    assert tracker.closed


def test_lr_logger_shows_the_warmup(fit_tiny: Any) -> None:
    fit_tiny(epochs=3, lr=0.3, warmup_epochs=2, trackers=["recorder"], callbacks=["lr_warmup_log"])
    (tracker,) = RecordingTracker.instances
    per_step = [(step, v["lr/group0"]) for step, v in tracker.scalars if "lr/group0" in v]
    assert [s for s, _ in per_step] == list(range(1, 16))  # 5 steps per epoch, global step after each
    assert [lr for _, lr in per_step] == pytest.approx([0.1] * 5 + [0.2] * 5 + [0.3] * 5)


def test_gradient_histograms_by_default_sample_epochs_and_leave_the_others_lean(
    fit_tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlcore.training import _loop

    norms_per_epoch: dict[int, int] = {}
    real = _loop.total_norm
    current = [0]

    class Epoch(Callback):
        def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
            current[0] = epoch

    def counting(grads: list[torch.Tensor], uniform: bool = False) -> torch.Tensor:
        norms_per_epoch[current[0]] = norms_per_epoch.get(current[0], 0) + 1
        return real(grads, uniform)

    monkeypatch.setattr(_loop, "total_norm", counting)
    fit_tiny(epochs=11, batch_size=4, trackers=["recorder"], callbacks=["grad_histograms"], cbs=(Epoch(),))
    (tracker,) = RecordingTracker.instances
    assert sorted({step for name, _, step in tracker.histograms}) == [1, 10]  # every_n_epochs = 10
    assert sum(1 for name, _, step in tracker.histograms if step == 1) == 1 + 2 * 4  # global, grads, weights
    # 18 optimizer steps per epoch: every step in the sampled epochs, steps 0 and 10 in the others
    assert norms_per_epoch == {e: 18 if e in (1, 10) else 2 for e in range(1, 12)}


class _SlowModel(torch.nn.Module):
    """Sleeps 2 ms per forward pass; counts calls."""

    def __init__(self, with_example: bool = True) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)
        self.calls = 0
        if with_example:
            self.example_input = lambda batch_size=2: torch.zeros(batch_size, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        self.calls += 1
        assert not self.training and not torch.is_grad_enabled()
        time.sleep(0.002)
        return self.lin(x)


class _FakeTrainer:
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.logged: list[tuple[int, dict[str, float]]] = []

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        self.logged.append((step, dict(values)))


def test_inference_time_measures_the_forward_pass_in_eval_mode() -> None:
    from mlcore.training.callbacks import InferenceTime, InferenceTimeConfig

    model = _SlowModel()
    model.train()
    trainer = _FakeTrainer(model)
    cb = InferenceTime(InferenceTimeConfig(repeats=4, every_n_epochs=2))
    record: dict[str, Any] = {}
    cb.on_epoch_end(trainer, 1, record)  # type: ignore[arg-type]
    assert 2.0 <= record["inference_ms"] < 50.0
    assert trainer.logged == [(1, {"time/inference_ms": record["inference_ms"]})]
    assert model.calls == 5 + 4 and model.training  # warm-up + timed; train mode restored
    skipped: dict[str, Any] = {}
    cb.on_epoch_end(trainer, 3, skipped)  # type: ignore[arg-type]
    assert skipped == {} and len(trainer.logged) == 1


def test_inference_time_skips_models_without_example_input() -> None:
    from mlcore.training.callbacks import InferenceTime

    model = _SlowModel(with_example=False)
    trainer = _FakeTrainer(model)
    record: dict[str, Any] = {}
    InferenceTime().on_epoch_end(trainer, 1, record)  # type: ignore[arg-type]
    assert record == {} and trainer.logged == [] and model.calls == 0
    assert get_registry().get("callback", "inference_time").build().__class__ is InferenceTime
