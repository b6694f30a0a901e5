"""Tests of mlcore.training.tracking: TensorBoard event contents, MLflow (absent, present, registry), wandb offline."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import struct
import sys
import types
from collections.abc import Iterator
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
    fake.start_run = lambda run_name=None, **kw: calls["start"].append(run_name)  # type: ignore[attr-defined]
    fake.log_artifact = lambda path, artifact_path=None: calls.setdefault("artifacts", []).append(  # type: ignore[attr-defined]
        (Path(path).name, artifact_path)
    )
    fake.log_params = lambda params: calls["params"].append(params)  # type: ignore[attr-defined]
    fake.log_metrics = lambda metrics, step=None: calls["metrics"].append((step, metrics))  # type: ignore[attr-defined]
    fake.end_run = lambda: calls["end"].append(True)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLCORE_MLFLOW_MODEL", "off")
    _, _, run_dir = fit_tiny(epochs=2, trackers=["mlflow"], callbacks=["grad_histograms"])
    assert calls["uri"] == [(run_dir.resolve() / "mlruns").as_uri()] and calls["start"] == ["run"]
    assert calls["params"][0]["trainer.epochs"] == "2" and calls["params"][0]["meta.plugin"] == "testplug"
    epoch_metrics = [m for step, m in calls["metrics"] if "loss.train" in m]
    assert len(epoch_metrics) == 2 and "loss.val" in epoch_metrics[0]
    assert any("grad_norm.global.mean" in m for _, m in calls["metrics"])
    assert calls["end"] == [True]
    assert calls["artifacts"] == [("best.pt", "model"), ("training_stats.json", None)]


def test_real_mlflow_sqlite_store_registers_the_best_checkpoint(
    fit_tiny: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLCORE_MLFLOW_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)  # the sqlite store keeps artefacts in ./mlruns
    fit_tiny(run="reg1", epochs=2, trackers=["mlflow"], plot=True)
    fit_tiny(run="reg2", epochs=1, trackers=["mlflow"])
    client = mlflow.tracking.MlflowClient(uri)
    versions = sorted(client.search_model_versions("name='testplug-tiny'"), key=lambda v: int(v.version))
    assert [int(v.version) for v in versions] == [1, 2]
    runs = {
        r.info.run_id: r.info.run_name
        for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
    }
    assert [runs[v.run_id] for v in versions] == ["reg1", "reg2"]
    first = versions[0].run_id
    assert [a.path for a in client.list_artifacts(first, "model")] == ["model/best.pt"]
    assert [a.path for a in client.list_artifacts(first, "plots")] == ["plots/training_curves.png"]
    local = Path(client.download_artifacts(first, "model/best.pt", str(tmp_path / "dl")))
    assert local.read_bytes() == (tmp_path / "reg1" / "checkpoints" / "best.pt").read_bytes()


def wandb_records(path: Path) -> Iterator[Any]:
    """The protobuf records of a ``.wandb`` file (a LevelDB-style log: 32 KiB blocks, 7-byte record headers)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the rest of a block too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if pos + 7 + length > len(data):  # a record still being written
            return
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0:
            continue
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def finished_records(path: Path, timeout: float = 30.0) -> list[Any]:
    """The records once wandb's service has written the run's ``exit`` record (it writes after finish() returns)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        records = list(wandb_records(path))
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def test_wandb_offline_files_hold_scalars_config_system_metrics_and_artefacts(
    fit_tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    result, _, run_dir = fit_tiny(run="wb", epochs=3, trackers=["wandb"], callbacks=["grad_histograms"], plot=True)
    [log_file] = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    records = finished_records(log_file)
    kinds = [r.WhichOneof("record_type") for r in records]
    history = [
        {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    train = {h["mlcore_step"]: h["loss/train"] for h in history if "loss/train" in h}
    assert train == pytest.approx({r["epoch"]: r["train_loss"] for r in result.history}, rel=1e-6)
    assert {h["mlcore_step"] for h in history if "loss/val" in h} == {1, 2, 3}
    [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["trainer.epochs"] == 3 and config["meta.plugin"] == "testplug"
    assert run.display_name == "wb"
    assert "stats" in kinds  # system metrics (CPU, memory, ...) sampled by wandb
    artifacts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    assert [(a.type, a.name) for a in artifacts] == [("model", "wb-model")]
    assert {e.path for e in artifacts[0].manifest.contents} == {"best.pt", "training_stats.json"}
    histograms = [h for h in history if "weights/net.0.weight/_type" in h]
    assert [h["weights/net.0.weight/_type"] for h in histograms] == ["histogram"]  # epoch 1 (every 10th after)
    assert sum(histograms[0]["weights/net.0.weight/values"]) == 16  # the 2 x 8 weights of the first layer
    images = [h for h in history if "plots/training_curves/_type" in h]
    assert [h["plots/training_curves/_type"] for h in images] == ["image-file"]
    stored = log_file.parent / "files" / images[0]["plots/training_curves/path"]
    assert stored.read_bytes() == (run_dir / "training_curves.png").read_bytes()


def test_wandb_missing_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlcore.training.tracking import WandbTracker

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(
        MlcoreError, match=r"^tracker 'wandb' needs wandb, which is not installed: pip install 'mlcore\[wandb\]'$"
    ):
        WandbTracker()
