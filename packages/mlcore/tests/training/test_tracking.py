"""Tests of mlcore.training.tracking: TensorBoard event contents, MLflow (absent and present)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from mlcore.errors import MlcoreError
from mlcore.registry import Registry, get_registry
from mlcore.training.tracking import MLflowTracker, TensorBoardTracker, Tracker


def test_trackers_are_registered(test_registry: Registry) -> None:
    assert isinstance(get_registry().get("tracker", "tensorboard").build(), TensorBoardTracker)
    assert get_registry().get("tracker", "mlflow").target == "mlcore.training.tracking:MLflowTracker"


def test_tensorboard_gets_losses_lr_and_gradient_histograms(fit_tiny: Any) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, _, run_dir = fit_tiny(epochs=2, trackers=["tensorboard"], callbacks=["grad_histograms"])
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"histograms": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/train", "loss/val", "lr", "metrics/grad_norm", "time/epoch_seconds"} <= set(tags["scalars"])
    assert {"grad_norm/global", "grad_norm/net.0.weight", "weights/net.0.weight"} <= set(tags["histograms"])
    train = acc.Scalars("loss/train")
    assert [e.step for e in train] == [1, 2]
    assert [e.value for e in train] == pytest.approx([r["train_loss"] for r in result.history], rel=1e-6)
    assert "config" in "".join(tags.get("tensors", []))  # the trainer config recorded as text


def test_base_tracker_is_a_no_op(tmp_path: Path) -> None:
    t = Tracker()
    t.start(tmp_path, {})
    t.log_scalars({"a": 1.0}, 0)
    t.log_histogram("h", torch.ones(3), 0)
    t.close()
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_real_mlflow_file_store_holds_params_metrics_and_histogram_summaries(
    fit_tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    result, _, run_dir = fit_tiny(epochs=2, trackers=["mlflow"], callbacks=["grad_histograms"])
    client = mlflow.tracking.MlflowClient((run_dir.resolve() / "mlruns").as_uri())
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["trainer.epochs"] == "2" and run.data.params["meta.plugin"] == "testplug"
    history = client.get_metric_history(run.info.run_id, "loss.train")
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in history] == pytest.approx([r["train_loss"] for r in result.history], rel=1e-6)
    assert {"loss.val", "lr", "grad_norm.global.mean", "grad_norm.global.std"} <= set(run.data.metrics)


def test_mlflow_missing_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(MlcoreError) as exc:
        MLflowTracker()
    assert str(exc.value) == "tracker 'mlflow' needs MLflow, which is not installed: pip install mlflow"


def test_mlflow_receives_params_and_metrics(fit_tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, list[Any]] = {"uri": [], "start": [], "params": [], "metrics": [], "end": []}
    fake = types.ModuleType("mlflow")
    fake.__spec__ = importlib.machinery.ModuleSpec("mlflow", None)
    fake.set_tracking_uri = lambda uri: calls["uri"].append(uri)  # type: ignore[attr-defined]
    fake.start_run = lambda run_name=None: calls["start"].append(run_name)  # type: ignore[attr-defined]
    fake.log_params = lambda params: calls["params"].append(params)  # type: ignore[attr-defined]
    fake.log_metrics = lambda metrics, step=None: calls["metrics"].append((step, metrics))  # type: ignore[attr-defined]
    fake.end_run = lambda: calls["end"].append(True)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _, _, run_dir = fit_tiny(epochs=2, trackers=["mlflow"], callbacks=["grad_histograms"])
    assert calls["uri"] == [(run_dir.resolve() / "mlruns").as_uri()] and calls["start"] == ["run"]
    assert calls["params"][0]["trainer.epochs"] == "2" and calls["params"][0]["meta.plugin"] == "testplug"
    epoch_metrics = [m for step, m in calls["metrics"] if "loss.train" in m]
    assert len(epoch_metrics) == 2 and "loss.val" in epoch_metrics[0]
    assert any("grad_norm.global.mean" in m for _, m in calls["metrics"])
    assert calls["end"] == [True]
