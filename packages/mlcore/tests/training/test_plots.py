"""Tests of mlcore.training.plots."""

from __future__ import annotations

from pathlib import Path

from mlcore.training.plots import plot_training_curves

PNG = b"\x89PNG\r\n\x1a\n"


def test_curves_with_validation_and_extras(tmp_path: Path) -> None:
    history = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "lr": 1e-3, "seconds": 0.1, "val_acc": 0.5 + e / 10}
        for e in range(1, 6)
    ]
    out = plot_training_curves(history, tmp_path / "training_curves.png", title="demo")
    assert out == tmp_path / "training_curves.png" and out.read_bytes()[:8] == PNG


def test_curves_without_validation_and_negative_losses(tmp_path: Path) -> None:
    history = [{"epoch": e, "train_loss": -float(e), "val_loss": None, "lr": 0.1, "seconds": 0.1} for e in (1, 2)]
    out = plot_training_curves(history, tmp_path / "c.png")
    assert out is not None and out.read_bytes()[:8] == PNG


def test_nothing_to_draw(tmp_path: Path) -> None:
    assert plot_training_curves([], tmp_path / "c.png") is None
    assert not (tmp_path / "c.png").exists()
