"""End-to-end: the ``quick`` profile of the ``sine`` pipeline, through mlcore's public API."""

from __future__ import annotations

import json

import pytest

import mlcore


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sine") / "run"
    # the quick profile, shortened further so the test stays fast
    return mlcore.run(
        "sine",
        profile="quick",
        overrides=["trainer.epochs=4", "trainer.trackers=[]", "trainer.callbacks=[]"],
        out=out,
        device="cpu",
        progress=False,
    )


def test_quick_run_writes_the_run_directory(quick_run):
    out = quick_run.out_dir
    for name in (
        "config.toml",
        "metrics.json",
        "report.md",
        "training_stats.json",
        "checkpoints/best.pt",
        "data/sine_windows.npz",
        "plots/predictions.png",
    ):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "persistence baseline MSE" in report and "Profile `quick`" in report
    assert report.startswith("# sine: next-value prediction")


def test_quick_run_learns_better_than_persistence(quick_run):
    m = quick_run.metrics
    assert set(m) >= {"mse", "mae", "rmse", "r2", "baseline_mse"}
    assert m["mse"] < m["baseline_mse"], m
    assert m["r2"] > 0.8, m
    saved = json.loads((quick_run.out_dir / "metrics.json").read_text())
    assert saved["mse"] == pytest.approx(m["mse"])


def test_checkpoint_evaluates_and_exports_on_its_own(quick_run, tmp_path):
    best = quick_run.out_dir / "checkpoints" / "best.pt"
    metrics = mlcore.evaluate(best, out_dir=tmp_path / "eval", device="cpu")
    assert metrics["mse"] == pytest.approx(quick_run.metrics["mse"], rel=1e-5)
    result = mlcore.export(best, format="torchscript", out=tmp_path / "sine.ts")
    assert result.ok and result.batch_sizes_checked == (1, 3)


def test_the_data_sizes_the_model(tmp_path):
    """``dataset.window`` is configured once: the model follows it, a contradicting model.window is refused."""
    out = tmp_path / "w8"
    result = mlcore.run(
        "sine",
        profile="quick",
        overrides=["dataset.window=8", "trainer.epochs=1", "trainer.trackers=[]"],
        out=out,
        device="cpu",
        progress=False,
    )
    ckpt = mlcore.load_checkpoint(result.out_dir / "checkpoints" / "best.pt")
    assert ckpt["meta"]["components"]["model"]["config"]["window"] == 8
    with pytest.raises(mlcore.ConfigError, match=r"model\.window=8 contradicts the data, which has window=16"):
        mlcore.run(
            "sine", profile="quick", overrides=["model.window=8"], out=tmp_path / "bad", device="cpu", progress=False
        )


def test_old_table_name_data_is_still_read(tmp_path):
    """Configs written before the rename (``[data]``) keep working."""
    config = {"run": {"plugin": "sine"}, "data": {"num_samples": 256}, "trainer": {"epochs": 1, "trackers": []}}
    result = mlcore.run(config=config, out=tmp_path / "old", device="cpu", progress=False)
    assert "256 windows" in (result.out_dir / "report.md").read_text()
