"""Writes this run directory with the trainer as it was before the split (main at 27a2458).

Run: PYTHONPATH=<old checkout>/packages/mlcore/src python make_run.py <run_dir> 2
tests/training/test_run_files.py resumes it with today's trainer.
"""

import sys

import torch
from torch import nn
from torch.utils.data import TensorDataset

from mlcore.data import DataModule
from mlcore.training import Trainer, TrainerConfig


class Data(DataModule):
    """y = sin(2 x0 - x1), 96 samples, 75/25 split."""

    def setup(self) -> None:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(96, 2, generator=g)
        self.t, self.v = self.split(TensorDataset(x, torch.sin(2 * x[:, :1] - x[:, 1:])), [0.75, 0.25])

    def train_set(self) -> TensorDataset:
        return self.t

    def val_set(self) -> TensorDataset:
        return self.v


def model() -> nn.Module:
    """The seeded initial model."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 1))


def config(epochs: int) -> TrainerConfig:
    """Early stopping on a falling train loss in mode max: epoch 1 stays best, patience 3 ends epoch 4."""
    return TrainerConfig(
        epochs=epochs,
        batch_size=8,
        lr=1e-2,
        scheduler="none",  # so that the 2-epoch run and its 10-epoch extension share one schedule
        patience=3,
        monitor="train_loss",
        monitor_mode="max",
        trackers=[],
        callbacks=["grad_histograms"],
        plot=False,
        progress=False,
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    result = Trainer(config(int(sys.argv[2])), device="cpu", seed=0).fit(
        model(), Data(), nn.MSELoss(), run_dir=sys.argv[1]
    )
    print(result.stopped_reason, result.epochs_run)
