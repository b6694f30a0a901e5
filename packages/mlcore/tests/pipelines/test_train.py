"""The built-in ``train`` pipeline (``mlcore train``) is a recipe whose tables name every part."""

from __future__ import annotations

import pytest

import mlcore
from mlcore.errors import ConfigError
from mlcore.training.checkpoint import load_checkpoint

CONFIG = {
    "dataset": {"name": "waves", "num_samples": 64, "window": 5},
    "model": {"name": "net", "hidden": 8},
    "loss": {"name": "huber", "delta": 0.5},
    "trainer": {"name": "supervised", "epochs": 2, "batch_size": 16, "trackers": [], "callbacks": []},
    "evaluator": {"name": "regression"},
}


def test_train_assembles_named_components(toy_recipe, tmp_path):
    result = mlcore.train(CONFIG, out=tmp_path / "run", device="cpu", progress=False)
    assert result.metrics["epochs_run"] == 2 and {"mse", "r2"} <= set(result.metrics)
    meta = load_checkpoint(result.out_dir / "checkpoints" / "best.pt")["meta"]
    assert meta["components"]["model"] == {"name": "net", "config": {"window": 5, "outputs": 1, "hidden": 8}}
    assert meta["components"]["loss"]["name"] == "huber" and meta["components"]["loss"]["config"] == {"delta": 0.5}
    assert (result.out_dir / "report.md").read_text().startswith("# net on waves")


def test_train_without_evaluator_skips_evaluation(toy_recipe, tmp_path):
    config = {k: v for k, v in CONFIG.items() if k != "evaluator"}
    result = mlcore.train(config, out=tmp_path / "run", device="cpu", progress=False)
    assert "mse" not in result.metrics and result.metrics["epochs_run"] == 2


def test_train_needs_a_model_table(toy_recipe, tmp_path):
    config = {k: v for k, v in CONFIG.items() if k != "model"}
    with pytest.raises(ConfigError, match=r"^\[model\] is required"):
        mlcore.train(config, out=tmp_path / "run", device="cpu", progress=False)
