"""A plugin declared as a recipe runs end to end through the core: link, check, train, resume, evaluate, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mlcore
from mlcore import api
from mlcore.errors import ConfigError, RunInterrupted
from mlcore.pipelines.recipe import link_dimensions
from mlcore.runs import RunContext
from mlcore.training.checkpoint import build_model, load_checkpoint

from .conftest import NetConfig, StopAtEpoch3


def _run(out: Path, *overrides: str) -> api.RunResult:
    return api.run("waves", profile="quick", overrides=list(overrides), out=out, device="cpu", progress=False)


def _pipeline(tmp_path: Path, *overrides: str):
    resolved = api.resolve("waves", profile="quick", overrides=list(overrides))
    ctx = RunContext(
        out_dir=tmp_path / "run",
        device=torch.device("cpu"),
        seed=0,
        plugin="waves",
        pipeline="waves",
        profile="quick",
        config=resolved.config,
        progress=False,
    )
    return resolved.spec.build(resolved.config), ctx


def test_recipe_runs_end_to_end(toy_recipe, tmp_path):
    result = _run(tmp_path / "run", "export.enabled=true")
    out, m = result.out_dir, result.metrics
    for name in ("config.toml", "metrics.json", "report.md", "checkpoints/best.pt", "model.ts", "export.json"):
        assert (out / name).is_file(), name
    assert m["epochs_run"] == 4 and m["export_ok"] == 1.0 and m["window_seen"] == 4.0
    assert m["mse"] < 0.2, m  # sine continuation is learnable: predicting the mean scores ~0.5
    report = (out / "report.md").read_text()
    assert report.startswith("# waves") and "## Waves\n\nwindow 4" in report and "Profile `quick`" in report
    # the checkpoint alone evaluates to the same figures
    again = mlcore.evaluate(out / "checkpoints" / "best.pt", out_dir=tmp_path / "eval", device="cpu")
    assert again["mse"] == pytest.approx(m["mse"], rel=1e-6)


def test_link_passes_the_data_dimensions_to_the_model(toy_recipe, tmp_path):
    result = _run(tmp_path / "run", "dataset.window=7")
    assert result.metrics["window_seen"] == 7.0
    ckpt = load_checkpoint(result.out_dir / "checkpoints" / "best.pt")
    assert ckpt["meta"]["components"]["model"]["config"]["window"] == 7  # rebuildable from the file alone
    assert build_model(ckpt).net[0].in_features == 7


def test_link_refuses_a_model_size_that_contradicts_the_data(toy_recipe, tmp_path):
    pipe, ctx = _pipeline(tmp_path, "dataset.window=7", "model.window=5")
    with pytest.raises(ConfigError, match=r"model\.window=5 contradicts the data, which has window=7"):
        pipe.check(ctx)
    assert link_dimensions(NetConfig(), {"window": 9, "unknown": 1}) == NetConfig(window=9)


def test_shape_mismatch_fails_in_check_before_anything_is_written(toy_recipe, tmp_path):
    pipe, ctx = _pipeline(tmp_path, "dataset.horizon=3")
    with pytest.raises(ConfigError) as err:
        pipe.check(ctx)
    msg = str(err.value)
    assert "\n" not in msg
    assert "predicts shape (4, 1)" in msg and "targets of shape (4, 3)" in msg
    assert "model.outputs=1" in msg and "dataset.horizon=3" in msg
    assert not ctx.out_dir.exists()


def test_matching_shapes_pass_check(toy_recipe, tmp_path):
    pipe, ctx = _pipeline(tmp_path, "dataset.horizon=3", "model.outputs=3")
    pipe.check(ctx)
    assert not ctx.out_dir.exists()


def test_interrupted_run_resumes_where_it_stopped(toy_recipe, tmp_path):
    straight = _run(tmp_path / "straight", "trainer.callbacks=['stop_at_3']")
    StopAtEpoch3.seen.clear()
    StopAtEpoch3.armed = True
    with pytest.raises(RunInterrupted):
        _run(tmp_path / "resumed", "trainer.callbacks=['stop_at_3']")
    assert not (tmp_path / "resumed" / "metrics.json").exists()  # nothing evaluated on a half-trained model
    assert StopAtEpoch3.seen == [1, 2, 3]
    StopAtEpoch3.seen.clear()
    resumed = _run(tmp_path / "resumed", "trainer.callbacks=['stop_at_3']")
    assert StopAtEpoch3.seen == [3, 4]  # epochs 1-2 came from last.pt
    assert resumed.metrics["mse"] == straight.metrics["mse"]  # bit-exact on CPU
    stats = json.loads((tmp_path / "resumed" / "training_stats.json").read_text())
    history = stats["history"] if isinstance(stats, dict) else stats
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]


def test_loss_table_switches_the_loss(toy_recipe, tmp_path):
    mse = _run(tmp_path / "mse")
    huber = _run(tmp_path / "huber", "loss=huber")
    ckpt = load_checkpoint(huber.out_dir / "checkpoints" / "best.pt")
    assert ckpt["meta"]["components"]["loss"]["name"] == "huber"
    assert huber.metrics["best_metric"] != mse.metrics["best_metric"]


def test_missing_dataset_or_loss_is_one_line(toy_recipe, tmp_path):
    from mlcore.pipelines import Recipe, RecipePipeline
    from mlcore.pipelines.train import TrainPipeline, TrainPipelineConfig

    ctx = _pipeline(tmp_path)[1]
    with pytest.raises(ConfigError, match=r"^\[dataset\] is required"):
        TrainPipeline(TrainPipelineConfig()).check(ctx)

    class NoLoss(RecipePipeline[object]):
        recipe = Recipe(dataset="waves", model="net", loss=None)

    with pytest.raises(ConfigError, match=r"\[loss\] is required: model 'net' has no compute_loss"):
        NoLoss(object()).check(ctx)
    assert not ctx.out_dir.exists()
