"""Tests of mlcore.training.trainer: the fit loop, resume, stopping rules, AMP, files written."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mlcore.config import structure
from mlcore.errors import CheckpointError, ConfigError, MlcoreError, RunInterrupted
from mlcore.training import Callback, FitResult, Trainer, TrainerConfig
from mlcore.training._loaders import shuffle_seed
from mlcore.training.batches import batch_size_of, move_to_device
from mlcore.training.checkpoint import load_checkpoint

from .conftest import LossHookNet, OtherNet, TinyConfig, TinyData, TinyDataConfig, TinyNet


def curves(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Everything of the history except wall-clock seconds."""
    return [tuple((k, v) for k, v in sorted(r.items()) if k != "seconds") for r in history]


def same_weights(a: nn.Module | dict[str, torch.Tensor], b: nn.Module | dict[str, torch.Tensor]) -> bool:
    sa = a.state_dict() if isinstance(a, nn.Module) else a
    sb = b.state_dict() if isinstance(b, nn.Module) else b
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- basics


def test_fit_writes_every_run_file(fit_tiny: Any) -> None:
    result, _, run_dir = fit_tiny(
        epochs=3, trackers=["tensorboard"], callbacks=["grad_histograms", "lr_warmup_log"], plot=True
    )
    assert isinstance(result, FitResult)
    assert result.stopped_reason == "completed" and result.epochs_run == 3
    assert result.best_checkpoint == run_dir / "checkpoints" / "best.pt" and result.best_checkpoint.is_file()
    assert result.last_checkpoint == run_dir / "checkpoints" / "last.pt" and result.last_checkpoint.is_file()
    assert (run_dir / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    stats = json.loads((run_dir / "training_stats.json").read_text())
    assert stats["stopped_reason"] == "completed" and stats["epochs_run"] == 3 and stats["monitor"] == "val_loss"
    assert [r["epoch"] for r in stats["history"]] == [1, 2, 3]
    for rec in stats["history"]:
        assert {"train_loss", "val_loss", "lr", "seconds", "grad_norm", "grad_norm_max"} <= rec.keys()
        assert 0 < rec["seconds"] < 60 and 0 < rec["grad_norm"] <= rec["grad_norm_max"] < 100
    assert stats["best_metric"] == pytest.approx(min(r["val_loss"] for r in stats["history"]))
    assert result.train_seconds == pytest.approx(sum(r["seconds"] for r in result.history))
    # training lowers the loss on this easy problem
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_model_holds_best_weights_after_fit(fit_tiny: Any) -> None:
    # monitoring the decreasing train loss with mode=max makes epoch 1 the best: not the last
    result, model, run_dir = fit_tiny(epochs=3, monitor="train_loss", monitor_mode="max")
    assert result.best_epoch == 1 and result.best_metric == result.history[0]["train_loss"]
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert best["epoch"] == 1 and last["epoch"] == 3
    assert same_weights(model, best["model"])
    assert not same_weights(model, last["model"])


def test_checkpoint_carries_full_state(fit_tiny: Any) -> None:
    _, _, run_dir = fit_tiny(epochs=2, amp=False)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    for key in ("optimizer", "scheduler", "rng", "history", "best_metric", "best_epoch", "trainer_config", "meta"):
        assert key in ckpt, key
    assert ckpt["trainer_config"]["epochs"] == 2 and ckpt["trainer_config"]["optimizer"] == "adam"
    model_config = {"in_features": 2, "hidden": 8, "out_features": 1, "dropout": 0.2}
    assert ckpt["meta"]["components"]["model"] == {"name": "tiny", "config": model_config}
    assert torch.equal(ckpt["meta"]["data_state"]["mean"], TinyData().prepare().mean)
    assert len(ckpt["history"]) == 2 and ckpt["epoch"] == 2


def test_grad_norm_is_sampled_without_clipping_or_callbacks(fit_tiny: Any) -> None:
    from mlcore.training import _loop as loop_module

    seen: list[int] = []
    real = loop_module.total_norm

    def counting(grads: list[torch.Tensor], uniform: bool = False) -> torch.Tensor:
        seen.append(1)
        return real(grads, uniform)

    loop_module.total_norm = counting  # type: ignore[assignment]
    try:
        result, _, _ = fit_tiny(epochs=2, batch_size=4)  # 18 optimizer steps per epoch
    finally:
        loop_module.total_norm = real  # type: ignore[assignment]
    assert len(seen) == 2 * 2  # steps 0 and 10 of each epoch
    for rec in result.history:
        assert rec["grad_norm"] > 0 and rec["grad_norm_max"] >= rec["grad_norm"]


def test_compute_loss_hook_with_dict_batches_and_extras(fit_tiny: Any) -> None:
    model = LossHookNet(TinyConfig())
    data = TinyData(TinyDataConfig(dict_batches=True))
    result, model, _ = fit_tiny(model=model, data=data, epochs=2)
    assert model.calls == {"train": 2 * 5, "eval": 2 * 2}  # 72 / 16 -> 5 training, 24 / 16 -> 2 val batches
    for rec in result.history:
        assert rec["train_is_train"] == 1.0 and rec["val_is_train"] == 0.0
        # mean |e| squared never exceeds mean e^2 (Jensen), per batch and so for the weighted means
        assert 0 < rec["val_mae"] ** 2 <= rec["val_loss"] * (1 + 1e-6)
        assert 0 < rec["train_mae"] ** 2 <= rec["train_loss"] * (1 + 1e-6)


def test_monitor_on_logged_extra(fit_tiny: Any) -> None:
    data = TinyData(TinyDataConfig(dict_batches=True))
    result, _, _ = fit_tiny(model=LossHookNet(), data=data, epochs=2, monitor="val_mae")
    assert result.monitor == "val_mae"
    assert result.best_metric == min(r["val_mae"] for r in result.history)


def test_without_val_set_monitors_train_loss(fit_tiny: Any) -> None:
    result, _, _ = fit_tiny(data=TinyData(TinyDataConfig(val_fraction=0.0)), epochs=2)
    assert result.monitor == "train_loss"
    assert all(r["val_loss"] is None for r in result.history)
    assert result.best_metric == min(r["train_loss"] for r in result.history)


def test_batch_helpers_move_nested_structures() -> None:
    batch = {"x": torch.ones(4, 2), "pair": (torch.zeros(4), [torch.zeros(4, 1)]), "name": "a"}
    moved = move_to_device(batch, torch.device("cpu"))
    assert moved["name"] == "a" and isinstance(moved["pair"], tuple) and isinstance(moved["pair"][1], list)
    assert batch_size_of(batch) == 4 and batch_size_of(([torch.zeros(3, 5)], torch.zeros(3))) == 3
    assert shuffle_seed(1, 2) != shuffle_seed(1, 3) and shuffle_seed(1, 2) == shuffle_seed(1, 2)


def test_loss_must_be_a_scalar(fit_tiny: Any) -> None:
    with pytest.raises(MlcoreError, match="scalar tensor"):
        fit_tiny(epochs=1, loss=nn.MSELoss(reduction="none"))


def test_diverging_loss_is_a_clear_error(fit_tiny: Any, tmp_path: Path) -> None:
    def nan_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (pred - y).pow(2).mean() * float("nan")

    class NanAtEpoch2:
        def __call__(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return nan_loss(pred, y) if trainer_epoch[0] == 2 else (pred - y).pow(2).mean()

    class Track(Callback):
        def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
            trainer_epoch[0] = epoch

    trainer_epoch = [0]
    with pytest.raises(MlcoreError, match="diverged: train_loss is nan at epoch 2"):
        fit_tiny("nan", epochs=3, loss=NanAtEpoch2(), cbs=(Track(),))
    run_dir = tmp_path / "nan"
    stats = json.loads((run_dir / "training_stats.json").read_text())
    assert stats["stopped_reason"] == "error" and stats["epochs_run"] == 1
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 1


# --------------------------------------------------------------------------- config


def test_config_errors_are_one_line_naming_the_field() -> None:
    with pytest.raises(ConfigError) as exc:
        structure(TrainerConfig, {"lr": -1}, where="trainer.")
    assert str(exc.value).startswith("trainer.lr=-1") and "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"trainer\.optimizer='adagrad' is not allowed \(allowed: adam, adamw"):
        structure(TrainerConfig, {"optimizer": "adagrad"}, where="trainer.")
    with pytest.raises(ConfigError, match="scheduler='linear'"):
        structure(TrainerConfig, {"scheduler": "linear"}, where="trainer.")
    with pytest.raises(ConfigError, match="monitor='loss'"):
        structure(TrainerConfig, {"monitor": "loss"}, where="trainer.")
    with pytest.raises(ConfigError, match="accumulate_grad_batches=0"):
        structure(TrainerConfig, {"accumulate_grad_batches": 0}, where="trainer.")
    with pytest.raises(ConfigError, match=r"callbacks=.*twice"):
        structure(TrainerConfig, {"callbacks": ["a", "a"]}, where="trainer.")
    cfg = structure(TrainerConfig, {"epochs": "5", "amp": "true", "trackers": []}, where="trainer.")
    assert cfg.epochs == 5 and cfg.amp is True and cfg.trackers == [] and cfg.eval_batch == 64


def test_unknown_callback_or_tracker_names(fit_tiny: Any) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.callbacks: no callback named 'grad_histogram'.*did you mean"):
        fit_tiny(epochs=1, callbacks=["grad_histogram"])
    with pytest.raises(ConfigError, match=r"trainer\.trackers: no tracker named 'tensorbord'"):
        fit_tiny(epochs=1, trackers=["tensorbord"])


def test_monitor_that_is_never_logged(fit_tiny: Any) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.monitor='val_accuracy' is not logged \(available: .*val_loss"):
        fit_tiny(epochs=1, monitor="val_accuracy")
    with pytest.raises(ConfigError, match="needs a validation set"):
        fit_tiny(epochs=1, monitor="val_accuracy", data=TinyData(TinyDataConfig(val_fraction=0.0)))


def test_unavailable_device_is_a_config_error(fit_tiny: Any, tmp_path: Any) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    trainer = Trainer(TrainerConfig(trackers=[], callbacks=[]), device="cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        trainer.fit(TinyNet(), TinyData(), nn.MSELoss(), run_dir=tmp_path / "x")


# --------------------------------------------------------------------------- optimisation features


def test_gradient_accumulation_matches_a_larger_batch(fit_tiny: Any) -> None:
    # 72 training samples: batches of 16 (last 8) vs. batches of 8 accumulated in pairs (last alone)
    common = {"epochs": 1, "optimizer": "sgd", "momentum": 0.0, "lr": 0.1}

    def net() -> TinyNet:
        torch.manual_seed(0)
        return TinyNet()

    _, big, _ = fit_tiny("big", model=net(), batch_size=16, **common)
    _, acc, _ = fit_tiny("acc", model=net(), batch_size=8, accumulate_grad_batches=2, **common)
    _, small, _ = fit_tiny("small", model=net(), batch_size=8, **common)
    for k, v in big.state_dict().items():
        torch.testing.assert_close(acc.state_dict()[k], v, rtol=1e-5, atol=1e-6)
    assert not same_weights(small, big)


def test_gradient_clipping_bounds_the_norm_and_records_it(fit_tiny: Any) -> None:
    seen: list[tuple[float, float]] = []

    class Check(Callback):
        def on_before_optimizer_step(self, trainer: Trainer, grad_norm: torch.Tensor) -> None:
            grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
            seen.append((float(grad_norm), float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))))

    result, _, _ = fit_tiny(epochs=1, grad_clip=0.05, cbs=(Check(),))
    assert seen and all(after <= 0.05 * 1.001 for _, after in seen)
    assert all(before > 0.05 for before, _ in seen)  # recorded norm is the one before clipping
    assert result.history[0]["grad_norm"] == pytest.approx(sum(b for b, _ in seen) / len(seen), rel=1e-5)
    assert result.history[0]["grad_norm_max"] == pytest.approx(max(b for b, _ in seen), rel=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
def test_every_optimizer_trains(fit_tiny: Any, optimizer: str) -> None:
    result, _, _ = fit_tiny(epochs=3, optimizer=optimizer, lr=0.02, momentum=0.5)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_amp_on_cpu_autocasts_to_bfloat16(fit_tiny: Any) -> None:
    dtypes: set[torch.dtype] = set()

    class Probe(TinyNet):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = super().forward(x)
            if self.training:
                dtypes.add(out.dtype)
            return out

    result, model, _ = fit_tiny(model=Probe(TinyConfig(dropout=0.2)), epochs=3, amp=True)
    assert dtypes == {torch.bfloat16}
    assert next(model.parameters()).dtype == torch.float32  # master weights stay fp32
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_grad_scaler_path(fit_tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # CUDA's fp16 + GradScaler path, exercised on CPU with torch's CPU GradScaler
    monkeypatch.setattr(Trainer, "_amp", lambda self: (torch.bfloat16, torch.amp.GradScaler("cpu", init_scale=1024.0)))
    result, _, run_dir = fit_tiny(epochs=2, amp=True, grad_clip=1.0)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert all(r["grad_norm"] < 100 for r in result.history)  # norms recorded after unscaling
    assert 0 < load_checkpoint(run_dir / "checkpoints" / "last.pt")["scaler"]["scale"] <= 1024.0


def test_deterministic_switch(fit_tiny: Any) -> None:
    try:
        fit_tiny(epochs=1, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_same_seed_same_run_other_seed_other_run(fit_tiny: Any) -> None:
    a, ma, _ = fit_tiny("a", epochs=2, seed=3)
    b, mb, _ = fit_tiny("b", epochs=2, seed=3)
    c, _, _ = fit_tiny("c", epochs=2, seed=4)
    assert curves(a.history) == curves(b.history) and same_weights(ma, mb)
    assert curves(a.history) != curves(c.history)


# --------------------------------------------------------------------------- stopping


def test_early_stopping_with_patience(fit_tiny: Any) -> None:
    # train loss falls every epoch, so with mode=max it never improves after epoch 1
    result, _, run_dir = fit_tiny(epochs=10, patience=2, monitor="train_loss", monitor_mode="max")
    assert result.stopped_reason == "early_stopping" and result.epochs_run == 3 and result.best_epoch == 1
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["stopped_reason"] == "early_stopping"
    # running again in the same directory does not train further
    again, _, _ = fit_tiny(epochs=10, patience=2, monitor="train_loss", monitor_mode="max")
    assert again.stopped_reason == "early_stopping" and curves(again.history) == curves(result.history)


class Sleep(Callback):
    """Makes epochs slow: ``seconds`` at the start of each epoch, ``per_batch`` after each batch from ``from_epoch``."""

    def __init__(self, seconds: float = 0.0, per_batch: float = 0.0, from_epoch: int = 1) -> None:
        self.seconds, self.per_batch, self.from_epoch = seconds, per_batch, from_epoch

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        time.sleep(self.seconds)

    def on_batch_end(self, trainer: Trainer, batch_idx: int, loss: torch.Tensor, logs: dict[str, float]) -> None:
        if trainer.epoch >= self.from_epoch:
            time.sleep(self.per_batch)


def test_time_limit_stops_before_the_next_epoch(fit_tiny: Any) -> None:
    limit = 1.2  # seconds; each epoch sleeps 0.35 s
    t0 = time.monotonic()
    result, _, run_dir = fit_tiny(epochs=50, max_time_minutes=limit / 60, cbs=(Sleep(0.35),))
    assert result.stopped_reason == "time_limit"
    assert 1 <= result.epochs_run <= 3
    assert result.train_seconds <= limit
    assert time.monotonic() - t0 < limit + 2.0  # setup and teardown are small
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["epoch"] == result.epochs_run
    assert json.loads((run_dir / "training_stats.json").read_text())["stopped_reason"] == "time_limit"


def test_time_limit_inside_an_epoch_keeps_the_last_complete_one(fit_tiny: Any) -> None:
    # epoch 1 is fast; epoch 2 would take 5 batches x 0.3 s, beyond the 0.8 s limit
    result, _, run_dir = fit_tiny(epochs=5, max_time_minutes=0.8 / 60, cbs=(Sleep(per_batch=0.3, from_epoch=2),))
    assert result.stopped_reason == "time_limit" and result.epochs_run == 1
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 1


# --------------------------------------------------------------------------- interruption and resume


class InterruptAt(Callback):
    """Raises KeyboardInterrupt in ``hook`` at ``epoch`` (simulates Ctrl-C / a kill)."""

    def __init__(self, epoch: int, hook: str = "on_epoch_start") -> None:
        self.epoch, self.hook = epoch, hook

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if self.hook == "on_epoch_start" and epoch == self.epoch:
            raise KeyboardInterrupt

    def on_batch_end(self, trainer: Trainer, batch_idx: int, loss: torch.Tensor, logs: dict[str, float]) -> None:
        if self.hook == "on_batch_end" and trainer.epoch == self.epoch and batch_idx == 2:
            raise KeyboardInterrupt

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        if self.hook == "on_epoch_end" and epoch == self.epoch:
            raise KeyboardInterrupt


RESUME_CONFIG = {
    "epochs": 4,
    "scheduler": "cosine",
    "warmup_epochs": 1,
    "patience": 3,
    "grad_clip": 1.0,
    "callbacks": ["grad_histograms"],
}


@pytest.mark.parametrize(("hook", "saved_epochs"), [("on_epoch_start", 2), ("on_batch_end", 2), ("on_epoch_end", 1)])
def test_interrupted_and_resumed_run_equals_uninterrupted(fit_tiny: Any, hook: str, saved_epochs: int) -> None:
    full, full_model, full_dir = fit_tiny("full", **RESUME_CONFIG)
    assert full.stopped_reason == "completed" and full.epochs_run == 4

    interrupt = InterruptAt(3 if hook != "on_epoch_end" else 2, hook)
    with pytest.raises(RunInterrupted, match=f"holds epoch {saved_epochs} of 4") as exc:
        fit_tiny("resumed", cbs=(interrupt,), **RESUME_CONFIG)
    run_dir = Path(str(exc.value.run_dir))
    assert exc.value.signal_name == "SIGINT" and run_dir.name == "resumed"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == saved_epochs
    stats = json.loads((run_dir / "training_stats.json").read_text())
    assert stats["stopped_reason"] == "interrupted" and stats["epochs_run"] == saved_epochs

    # a new process would build a fresh model: perturb it so only the checkpoint can make it right
    fresh = TinyNet(TinyConfig(dropout=0.2))
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(1.0)
    torch.manual_seed(999)  # and disturb the global RNG
    resumed, resumed_model, _ = fit_tiny("resumed", model=fresh, **RESUME_CONFIG)
    assert resumed.stopped_reason == "completed" and resumed.epochs_run == 4
    assert curves(resumed.history) == curves(full.history)
    assert resumed.best_epoch == full.best_epoch and resumed.best_metric == full.best_metric
    assert same_weights(resumed_model, full_model)
    last_full = load_checkpoint(full_dir / "checkpoints" / "last.pt")
    last_resumed = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert same_weights(last_full["model"], last_resumed["model"])


class Noop(Callback):
    """A callback with state of its own (shifts the positions of the callbacks after it)."""

    def state_dict(self) -> dict[str, Any]:
        return {"noop": 1}


def test_early_stopping_counter_survives_resume_with_other_callbacks(fit_tiny: Any) -> None:
    # mode=max on a falling train loss: epoch 1 is the best, patience 3 stops after epoch 4
    common = {"epochs": 10, "patience": 3, "monitor": "train_loss", "monitor_mode": "max"}
    full, _, _ = fit_tiny("full", **common)
    assert full.stopped_reason == "early_stopping" and full.epochs_run == 4
    with pytest.raises(RunInterrupted):
        fit_tiny("resumed", cbs=(InterruptAt(3),), **common)  # last.pt: epoch 2, one epoch waited
    # resume with two more callbacks in front: EarlyStopping moves from position 1 to 2
    resumed, _, run_dir = fit_tiny("resumed", cbs=(Noop(), Sleep(), Noop()), **common)
    assert resumed.stopped_reason == "early_stopping" and resumed.epochs_run == 4
    states = load_checkpoint(run_dir / "checkpoints" / "last.pt")["callbacks"]
    assert states["early_stopping"] == {"best": full.history[0]["train_loss"], "wait": 3, "stopped_epoch": 4}
    assert states[f"{Noop.__module__}.Noop"] == states[f"{Noop.__module__}.Noop#2"] == {"noop": 1}


def test_finished_run_is_not_trained_again(fit_tiny: Any, caplog: pytest.LogCaptureFixture) -> None:
    first, m1, _ = fit_tiny(epochs=2)
    caplog.set_level(logging.INFO, logger="mlcore.training")
    again, m2, _ = fit_tiny(epochs=2)
    assert "nothing to do" in caplog.text
    assert curves(again.history) == curves(first.history) and same_weights(m1, m2)
    # more epochs continue from the checkpoint
    longer, _, _ = fit_tiny(epochs=3)
    assert longer.epochs_run == 3 and curves(longer.history[:2]) == curves(first.history)


def test_resume_false_starts_over(fit_tiny: Any) -> None:
    first, _, _ = fit_tiny(epochs=2)
    again, _, _ = fit_tiny(epochs=2, resume=False, lr=0.05)
    assert again.epochs_run == 2 and curves(again.history) != curves(first.history)


def test_resuming_another_models_run_is_refused(fit_tiny: Any) -> None:
    fit_tiny(epochs=1)
    with pytest.raises(CheckpointError, match=r"cannot resume from .*last\.pt: it holds model 'tiny', not 'other'"):
        fit_tiny(epochs=2, model=OtherNet(TinyConfig(dropout=0.2)))
    with pytest.raises(CheckpointError, match=r"last\.pt \(resume\) does not fit model 'tiny': .*shape mismatch"):
        fit_tiny(epochs=2, model=TinyNet(TinyConfig(hidden=4)))


# --------------------------------------------------------------------------- progress and logging


def test_progress_bar_shows_live_loss(fit_tiny: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    fit_tiny(epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err


def test_epoch_lines_are_logged(fit_tiny: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mlcore.training")
    result, _, _ = fit_tiny(epochs=2)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2 and "train_loss=" in lines[0] and "val_loss=" in lines[0] and "lr=" in lines[0]
    assert result.best_metric == min(r["val_loss"] for r in result.history)


def test_empty_or_iterable_training_sets_are_data_errors(fit_tiny: Any) -> None:
    from torch.utils.data import IterableDataset

    from mlcore.errors import DataError

    class Empty(TinyData):
        def train_set(self) -> Any:
            return torch.utils.data.TensorDataset(torch.zeros(0, 2), torch.zeros(0, 1))

    class Stream(TinyData):
        def train_set(self) -> Any:
            class S(IterableDataset):  # type: ignore[type-arg]
                def __iter__(self) -> Any:
                    yield torch.zeros(2), torch.zeros(1)

            return S()

    with pytest.raises(DataError, match=r"Empty\.train_set\(\) is empty"):
        fit_tiny(epochs=1, data=Empty())
    with pytest.raises(DataError, match="is an IterableDataset"):
        fit_tiny(epochs=1, data=Stream())
