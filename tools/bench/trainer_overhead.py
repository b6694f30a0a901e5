"""Trainer overhead: the generic mlcore Trainer vs a plain hand-written PyTorch loop, in one run.

Same model initialisation, data, data order and seed on both sides. The two alternate epoch by
epoch inside one process (a callback runs one plain epoch at the start of each Trainer epoch and
the two are timed separately), so a busy machine slows both alike. Reported per model: median
seconds per epoch of each; the overhead in % (target: <= 5 %), i.e. the median over epochs of
the ratio of a Trainer epoch to the mean of the plain epochs run right before and after it, which
cancels slow changes in machine load and order effects; and the largest absolute difference
between the two loss curves (train and validation; target: 0, i.e. identical).

Configurations (``--configs``):

- ``default``: the TrainerConfig a user gets (TensorBoard tracker, the ``grad_histograms`` callback,
  progress setting, async checkpoints), except ``scheduler="none"`` so that the loss curves can be
  compared with the constant-lr plain loop.
- ``lean``: no trackers, callbacks, plots or progress bars (``trackers=[]``, ``callbacks=[]``).
- ``lightning``: PyTorch Lightning's Trainer with its defaults (logger, ModelCheckpoint) on the same
  module, data order and optimizer, interleaved the same way; skipped with a note when
  ``lightning`` is not installed (it is no dependency of mlcore).

Every Trainer epoch includes everything fit() does per epoch - validation, the gradient norm it
records, best.pt/last.pt written atomically, training_stats.json - and, before the next plain
epoch starts, the wait for the background checkpoint write (so the plain loop is never charged
with it). The plain loop does training and validation only.

Usage: python tools/bench/trainer_overhead.py [--models mlp,lstm] [--configs default,lean,lightning]
       [--epochs 8] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import print_table, write_results
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcore.data import DataModule
from mlcore.training import Callback, Trainer, TrainerConfig
from mlcore.training.trainer import shuffle_seed

TARGET_OVERHEAD = 0.05


# --------------------------------------------------------------------------- models and data


class MLP(nn.Module):
    """32 -> 256 -> 256 -> 1 regressor: small steps, the worst case for per-step overhead."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LSTMRegressor(nn.Module):
    """One-layer LSTM over 32-step sequences of 8 features, predicting 4 values."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 64, batch_first=True)
        self.head = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def make_data(kind: str, n: int) -> tuple[TensorDataset, TensorDataset]:
    """A seeded synthetic regression problem, split 85/15."""
    g = torch.Generator().manual_seed(0)
    if kind == "mlp":
        x = torch.randn(n, 32, generator=g)
        y = torch.sin(x[:, :4].sum(1, keepdim=True)) + 0.1 * x[:, 4:5]
    else:
        x = torch.randn(n, 32, 8, generator=g).cumsum(1) / 8
        y = torch.stack([x[:, -1, 0], x[:, :, 1].mean(1), x[:, -1, 2] * x[:, -1, 3], x[:, 0, 4]], 1)
    cut = int(n * 0.85)
    return TensorDataset(x[:cut], y[:cut]), TensorDataset(x[cut:], y[cut:])


class BenchData(DataModule):
    """Hands the prepared tensors to the Trainer."""

    def __init__(self, train: TensorDataset, val: TensorDataset) -> None:
        super().__init__(None)
        self._train, self._val = train, val

    def train_set(self) -> TensorDataset:
        return self._train

    def val_set(self) -> TensorDataset:
        return self._val


# --------------------------------------------------------------------------- the two loops


class PlainLoop:
    """A hand-written loop (Adam, MSE, shuffled batches, validation each epoch), run one epoch at a time."""

    def __init__(
        self, model: nn.Module, train: TensorDataset, val: TensorDataset, *, batch_size: int, lr: float, seed: int
    ) -> None:
        self.model, self.seed = model, seed
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)
        self.loss_fn = nn.MSELoss()
        self.g = torch.Generator()
        self.train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=self.g)
        self.val_loader = DataLoader(val, batch_size=batch_size)

    def epoch(self, epoch: int) -> tuple[float, float, float]:
        """Train and validate once; returns (seconds, train loss, validation loss)."""
        t0 = time.perf_counter()
        model, opt, loss_fn = self.model, self.opt, self.loss_fn
        self.g.manual_seed(shuffle_seed(self.seed, epoch))  # the Trainer's data order
        model.train()
        total, count = 0.0, 0
        for x, y in self.train_loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
            count += len(x)
        model.eval()
        vtotal, vcount = 0.0, 0
        with torch.no_grad():
            for x, y in self.val_loader:
                vtotal += loss_fn(model(x), y).item() * len(x)
                vcount += len(x)
        return time.perf_counter() - t0, total / count, vtotal / vcount


class Interleave(Callback):
    """Runs one plain epoch at the start of each Trainer epoch and times both separately.

    A Trainer epoch is timed from the end of that plain epoch to the start of the next plain epoch
    (or the end of fit), so it includes the Trainer's checkpoint and stats writing.
    """

    def __init__(self, plain: PlainLoop) -> None:
        self.plain = plain
        self.plain_times: list[float] = []
        self.plain_losses: list[tuple[float, float]] = []
        self.trainer_times: list[float] = []
        self.mark: float | None = None
        self.after = math.nan

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        trainer.wait_for_checkpoint()  # the previous epoch's background write is the Trainer's cost
        now = time.perf_counter()
        if self.mark is not None:
            self.trainer_times.append(now - self.mark)
        seconds, train_loss, val_loss = self.plain.epoch(epoch)
        self.plain_times.append(seconds)
        self.plain_losses.append((train_loss, val_loss))
        self.mark = time.perf_counter()

    def on_fit_end(self, trainer: Trainer, result: Any) -> None:
        if self.mark is not None:
            self.trainer_times.append(time.perf_counter() - self.mark)
        # one more plain epoch, so every Trainer epoch has a plain epoch on both sides
        self.after = self.plain.epoch(len(self.plain_times) + 1)[0]

    def paired_ratios(self) -> list[float]:
        """Trainer epoch time / mean of the plain epochs just before and after it (cancels order effects)."""
        plain = [*self.plain_times, self.after]
        return [t / ((plain[i] + plain[i + 1]) / 2) for i, t in enumerate(self.trainer_times)]


def run_pair(
    init: nn.Module,
    train: TensorDataset,
    val: TensorDataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    run_dir: Path,
    config: str,
) -> tuple[Interleave, list[tuple[float, float]]]:
    """One Trainer.fit with a plain loop interleaved epoch by epoch, from the same initial weights."""
    plain = PlainLoop(copy.deepcopy(init), train, val, batch_size=batch_size, lr=lr, seed=seed)
    if config == "lightning":
        return run_lightning(
            plain, init, train, val, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, run_dir=run_dir
        )
    common = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": "adam", "scheduler": "none"}
    if config == "lean":
        cfg = TrainerConfig(**common, trackers=[], callbacks=[], plot=False, progress=False, resume=False)
    else:
        cfg = TrainerConfig(**common, resume=False)  # every other setting is the default
    clock = Interleave(plain)
    result = Trainer(cfg, device="cpu", seed=seed, callbacks=[clock]).fit(
        copy.deepcopy(init), BenchData(train, val), nn.MSELoss(), run_dir=run_dir
    )
    return clock, [(r["train_loss"], r["val_loss"]) for r in result.history]


def lightning_available() -> bool:
    """Whether PyTorch Lightning can be imported (an optional comparison)."""
    import importlib.util

    return importlib.util.find_spec("lightning") is not None


def run_lightning(
    plain: PlainLoop,
    init: nn.Module,
    train: TensorDataset,
    val: TensorDataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    run_dir: Path,
) -> tuple[Interleave, list[tuple[float, float]]]:
    """Lightning's Trainer (default logger and checkpointing) with the plain loop interleaved."""
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net
            self.loss_fn = nn.MSELoss()
            self.train_sum = self.val_sum = 0.0
            self.train_n = self.val_n = 0
            self.losses: list[tuple[float, float]] = []

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = self.loss_fn(self.net(x), y)
            self.train_sum += loss.item() * len(x)
            self.train_n += len(x)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.val_sum += self.loss_fn(self.net(x), y).item() * len(x)
            self.val_n += len(x)

        def on_validation_epoch_end(self) -> None:
            if self.train_n:
                self.losses.append((self.train_sum / self.train_n, self.val_sum / max(self.val_n, 1)))
            self.train_sum = self.val_sum = 0.0
            self.train_n = self.val_n = 0

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=lr)

    g = torch.Generator()

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.clock = Interleave(plain)

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            epoch = trainer.current_epoch + 1
            now = time.perf_counter()
            if self.clock.mark is not None:
                self.clock.trainer_times.append(now - self.clock.mark)
            seconds, train_loss, val_loss = plain.epoch(epoch)
            self.clock.plain_times.append(seconds)
            self.clock.plain_losses.append((train_loss, val_loss))
            g.manual_seed(shuffle_seed(seed, epoch))  # the same data order as the plain loop
            self.clock.mark = time.perf_counter()

        def on_fit_end(self, trainer: Any, module: Any) -> None:
            self.clock.on_fit_end(None, None)  # type: ignore[arg-type]

    module = Module(copy.deepcopy(init))
    clock = Clock()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        default_root_dir=str(run_dir),
        callbacks=[clock],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(
        module,
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=g),
        DataLoader(val, batch_size=batch_size),
    )
    return clock.clock, module.losses


# --------------------------------------------------------------------------- main


def bench(
    kind: str, *, config: str, epochs: int, repeats: int, n: int, batch_size: int, seed: int = 0
) -> dict[str, Any]:
    """Interleaved runs; the first epoch of each run is a warm-up and not timed."""
    train, val = make_data(kind, n)
    torch.manual_seed(seed)
    init = MLP() if kind == "mlp" else LSTMRegressor()
    plain_times: list[float] = []
    trainer_times: list[float] = []
    ratios: list[float] = []
    diffs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            clock, trainer_losses = run_pair(
                init,
                train,
                val,
                epochs=epochs,
                batch_size=batch_size,
                lr=1e-3,
                seed=seed,
                run_dir=Path(tmp) / f"{config}-{r}",
                config=config,
            )
            plain_times += clock.plain_times[1:]
            trainer_times += clock.trainer_times[1:]
            ratios += clock.paired_ratios()[1:]
            if len(clock.plain_losses) != len(trainer_losses):
                diffs.append(float("inf"))
            diffs += [abs(a - b) for p, t in zip(clock.plain_losses, trainer_losses) for a, b in zip(p, t)]
    plain_s = statistics.median(plain_times)
    trainer_s = statistics.median(trainer_times)
    overhead = statistics.median(ratios) - 1.0  # paired: each Trainer epoch vs the plain epochs around it
    overhead_min = min(trainer_times) / min(plain_times) - 1.0
    max_diff = max(diffs)
    return {
        "model": kind,
        "config": config,
        "params": sum(p.numel() for p in init.parameters()),
        "samples": n,
        "batch_size": batch_size,
        "steps_per_epoch": -(-len(train) // batch_size),
        "epochs_timed": len(plain_times),
        "plain_s_per_epoch": plain_s,
        "trainer_s_per_epoch": trainer_s,
        "plain_min_s": min(plain_times),
        "trainer_min_s": min(trainer_times),
        "overhead_pct": 100 * overhead,
        "overhead_of_medians_pct": 100 * (trainer_s / plain_s - 1.0),
        "overhead_of_sums_pct": 100 * (sum(trainer_times) / sum(plain_times) - 1.0),
        "overhead_min_pct": 100 * overhead_min,
        "target_pct": 100 * TARGET_OVERHEAD,
        "overhead_ok": overhead <= TARGET_OVERHEAD,
        "loss_max_abs_diff": max_diff,
        "identical_curves": max_diff == 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,lstm", help="comma-separated: mlp, lstm")
    parser.add_argument("--configs", default="default,lean,lightning", help="comma-separated: default, lean, lightning")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small data, 3 epochs, 1 repeat (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 = least noise on a busy box)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    sizes = {"mlp": (16384, 64), "lstm": (4096, 64)}
    epochs, repeats = (3, 1) if args.quick else (args.epochs, args.repeats)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    notes = []
    if "lightning" in configs and not lightning_available():
        configs.remove("lightning")
        notes.append("lightning skipped: PyTorch Lightning is not installed (pip install lightning)")
        print(notes[-1])
    rows = []
    started = time.monotonic()
    for kind in [m.strip() for m in args.models.split(",") if m.strip()]:
        n, bs = sizes[kind]
        for config in configs:
            rows.append(
                bench(kind, config=config, epochs=epochs, repeats=repeats, n=n // 8 if args.quick else n, batch_size=bs)
            )
    print_table(
        rows,
        [
            "model",
            "config",
            "steps_per_epoch",
            "epochs_timed",
            "plain_s_per_epoch",
            "trainer_s_per_epoch",
            "overhead_pct",
            "overhead_of_medians_pct",
            "overhead_of_sums_pct",
            "overhead_min_pct",
            "overhead_ok",
            "loss_max_abs_diff",
            "identical_curves",
        ],
    )
    write_results(
        "trainer_overhead",
        {
            "description": "seconds/epoch, mlcore Trainer vs plain PyTorch loop (same model, data, order, seed); "
            "overhead_pct = median over epochs of trainer time / mean of the adjacent plain epochs - 1; "
            "overhead_of_medians_pct from the two medians; overhead_of_sums_pct from the total times (counts "
            "the sampled histogram epochs); overhead_min_pct from the fastest epochs",
            "trainer_includes": "validation, grad-norm recording, best/last checkpoints (waited for before the "
            "next plain epoch), training_stats.json; config default: TensorBoard tracker, grad_histograms "
            "callback (scheduler none); lean: no trackers/callbacks/plots/progress; lightning: PyTorch "
            "Lightning's Trainer with its default logger and checkpointing",
            "notes": notes,
            "wall_seconds": round(time.monotonic() - started, 1),
            "epochs": epochs,
            "repeats": repeats,
            "threads": args.threads,
            "results": rows,
        },
    )


if __name__ == "__main__":
    main()
