"""Tests of mlcore.training.checkpoint: meta, safe loading, clear errors, rebuilding the model."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mlcore import __version__
from mlcore._version import PLUGIN_API_VERSION
from mlcore.errors import CheckpointError
from mlcore.registry import Registry
from mlcore.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointWriter,
    build_model,
    checkpoint_payload,
    detached_copy,
    load_checkpoint,
    make_meta,
    plain_values,
    save_checkpoint,
    unwrap_model,
    write_payload,
)

from .conftest import TinyConfig, TinyData, TinyNet


@pytest.fixture
def saved(tmp_path: Path, test_registry: Registry) -> tuple[Path, TinyNet]:
    """A checkpoint of a TinyNet(hidden=6) with full meta."""
    torch.manual_seed(0)
    model = TinyNet(TinyConfig(hidden=6))
    data = TinyData()
    meta = make_meta(plugin="testplug", components={"model": ("tiny", TinyConfig(hidden=6))}, data=data, seed=3)
    path = save_checkpoint(tmp_path / "ck" / "best.pt", model=model, meta=meta, epoch=4, history=[{"epoch": 1}])
    return path, model


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_make_meta_records_provenance(test_registry: Registry) -> None:
    data = TinyData()
    meta = make_meta(
        plugin="testplug",
        components={
            "model": ("tiny", TinyConfig(hidden=6)),
            "loss": ("mse", None),
            "dataset": ("tinydata", data.config),
        },
        data=data,
        pipeline="train",
    )
    assert meta["plugin"] == "testplug" and meta["mlcore_version"] == __version__
    assert meta["plugin_api"] == PLUGIN_API_VERSION and "plugin_version" in meta
    assert meta["components"]["model"] == {
        "name": "tiny",
        "config": {"in_features": 2, "hidden": 6, "out_features": 1, "dropout": 0.0},
    }
    assert meta["components"]["loss"] == {"name": "mse", "config": None}
    assert meta["components"]["dataset"]["config"]["num_samples"] == 96
    assert torch.equal(meta["data_state"]["mean"], data.mean)  # make_meta prepared the data
    assert meta["pipeline"] == "train"
    assert make_meta(plugin="mlcore", components={})["plugin_version"] == __version__
    from mlcore.config import ComponentConfig

    section = ComponentConfig(name="tiny", config=TinyConfig(hidden=3))
    assert make_meta(plugin="testplug", components={"model": ("tiny", section)})["components"]["model"] == {
        "name": "tiny",
        "config": {"in_features": 2, "hidden": 3, "out_features": 1, "dropout": 0.0},
    }


def test_plain_keeps_only_safe_types() -> None:
    out = plain_values(
        {"a": np.arange(3.0), "b": np.float32(1.5), "c": (1, "x", None), "p": Path("/x"), "d": torch.float32}
    )
    assert isinstance(out["a"], torch.Tensor) and out["a"].tolist() == [0.0, 1.0, 2.0]
    assert out["b"] == 1.5 and isinstance(out["b"], float)
    assert out["c"] == (1, "x", None) and out["p"] == "/x" and out["d"] == "torch.float32"
    with pytest.raises(CheckpointError, match=r"cannot store state\.obj in a checkpoint: object is not a tensor"):
        plain_values({"obj": object()})


def test_round_trip_is_weights_only_safe(saved: tuple[Path, TinyNet]) -> None:
    path, model = saved
    raw = torch.load(path, weights_only=True)  # no allow-listing needed
    assert raw["format"] == CHECKPOINT_FORMAT and raw["kind"] == "mlcore-checkpoint"
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 4 and ckpt["history"] == [{"epoch": 1}] and ckpt["meta"]["seed"] == 3
    assert ckpt["path"] == str(path)
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)


def test_build_model_from_the_file_alone(saved: tuple[Path, TinyNet]) -> None:
    path, model = saved
    rebuilt = build_model(path, expect="tiny")
    assert isinstance(rebuilt, TinyNet) and rebuilt.net[0].out_features == 6 and not rebuilt.training
    x = torch.randn(5, 2)
    model.eval()
    assert torch.equal(rebuilt(x), model(x))
    assert isinstance(build_model(load_checkpoint(path)), TinyNet)


def test_build_model_of_another_model_is_refused(saved: tuple[Path, TinyNet]) -> None:
    path, _ = saved
    with pytest.raises(CheckpointError) as exc:
        build_model(path, expect="trc")
    assert one_line(exc) == f"checkpoint {path} holds model 'tiny' from plugin 'testplug', not 'trc'"


def test_build_model_with_mismatched_weights(tmp_path: Path, test_registry: Registry) -> None:
    meta = make_meta(plugin="testplug", components={"model": ("tiny", TinyConfig(hidden=4))})
    path = save_checkpoint(tmp_path / "m.pt", model=TinyNet(TinyConfig(hidden=6)), meta=meta)
    with pytest.raises(CheckpointError) as exc:
        build_model(path)
    msg = one_line(exc)
    assert msg.startswith(f"checkpoint {path} does not fit model 'tiny': shape mismatch net.0.weight (6, 2) vs (4, 2)")


def test_build_model_not_installed_or_without_meta(tmp_path: Path, test_registry: Registry) -> None:
    meta = make_meta(plugin="ghostplug", components={"model": ("ghost", {"size": 1})})
    path = save_checkpoint(tmp_path / "g.pt", model=TinyNet(), meta=meta)
    with pytest.raises(CheckpointError) as exc:
        build_model(path)
    assert "needs model 'ghost' from plugin 'ghostplug', which is not installed" in one_line(exc)
    bare = save_checkpoint(tmp_path / "bare.pt", model=TinyNet(), meta=None)
    with pytest.raises(CheckpointError, match="does not record which model it holds"):
        build_model(bare)
    bad_meta = make_meta(plugin="testplug", components={"model": ("tiny", {"x": 1})})
    bad_cfg = save_checkpoint(tmp_path / "cfg.pt", model=TinyNet(), meta=bad_meta)
    with pytest.raises(CheckpointError, match=r"its model config does not fit model/tiny: unknown key 'model\.x'"):
        build_model(bad_cfg)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_missing_corrupt_and_foreign_files(tmp_path: Path, saved: tuple[Path, TinyNet]) -> None:
    path, _ = saved
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(tmp_path / "nope.pt")
    assert one_line(exc) == f"checkpoint not found: {tmp_path / 'nope.pt'}"

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(truncated)
    assert one_line(exc).startswith(f"checkpoint {truncated} is corrupt, truncated or not a torch file (")

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(garbage)
    assert one_line(exc).startswith(f"checkpoint {garbage} is corrupt, truncated or not a torch file (")

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(foreign)
    assert one_line(exc).startswith(f"{foreign} is not an mlcore checkpoint")

    unsafe = tmp_path / "unsafe.pt"
    torch.save({"kind": "mlcore-checkpoint", "format": 1, "obj": io.StringIO("x")}, unsafe)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(unsafe)
    assert one_line(exc) == (
        f"checkpoint {unsafe} is not an mlcore checkpoint: it holds a _io.StringIO object, "
        "which cannot be loaded safely (weights_only)"
    )

    pickled = tmp_path / "pickled.pt"
    pickled.write_bytes(pickle.dumps({"kind": "mlcore-checkpoint"}))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(pickled)
    assert one_line(exc).startswith(f"checkpoint {pickled} is corrupt, truncated or not a torch file (")

    with pytest.raises(CheckpointError, match="is not a file"):
        load_checkpoint(tmp_path)


def test_unpickling_error_reason_is_its_first_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "odd.pt"
    path.write_bytes(b"x")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise pickle.UnpicklingError("invalid load key, 'x'.\nsecond line")

    monkeypatch.setattr(torch, "load", fail)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert one_line(exc) == f"checkpoint {path} is corrupt, truncated or not a torch file (invalid load key, 'x'.)"


def test_unwrap_model_reaches_the_module_inside_nested_wrappers() -> None:
    inner = torch.nn.Linear(2, 1)
    assert unwrap_model(torch.nn.DataParallel(torch.nn.DataParallel(inner))) is inner
    assert unwrap_model(inner) is inner


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "new.pt", model=TinyNet(), meta={})
    ckpt = torch.load(path, weights_only=True)
    ckpt["format"] = CHECKPOINT_FORMAT + 1
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert one_line(exc) == (
        f"checkpoint {path} uses format {CHECKPOINT_FORMAT + 1}, written by a newer mlcore; "
        f"this mlcore reads format {CHECKPOINT_FORMAT} at most (upgrade mlcore)"
    )


@pytest.mark.parametrize("broken", [{"model": [1, 2]}, {"meta": "x"}, {"model": None, "meta": None}])
def test_incomplete_checkpoint_is_one_line(tmp_path: Path, broken: dict[str, Any]) -> None:
    """Weights or meta that are not tables: one line, whichever of the two is broken."""
    path = save_checkpoint(tmp_path / "c.pt", model=TinyNet(), meta={})
    ckpt = torch.load(path, weights_only=True)
    ckpt.update(broken)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert one_line(exc) == f"checkpoint {path} is incomplete: it lacks the model weights or meta"


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "a.pt", model=TinyNet(), meta={}, epoch=1)
    before = path.read_bytes()

    def broken_save(obj: Any, fh: Any) -> None:
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, model=TinyNet(), meta={}, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left behind


# --------------------------------------------------------------------------- background writer


def test_make_meta_prepares_the_data_before_reading_its_state() -> None:
    class Lazy:
        scale: float | None = None

        def prepare(self) -> None:
            self.scale = 2.5  # e.g. normalisation statistics computed on first use

        def state_dict(self) -> dict[str, Any]:
            return {"scale": self.scale}

    meta = make_meta(plugin="mlcore", components={}, data=Lazy())  # type: ignore[arg-type]
    assert meta["data_state"] == {"scale": 2.5}


def test_writer_reports_a_failed_background_job_without_blocking() -> None:
    import threading

    writer = CheckpointWriter(background=True)
    assert writer.failed() is False
    release = threading.Event()

    def job() -> None:
        release.wait(5)
        raise OSError("disk full")

    writer.submit(job)
    assert writer.failed() is False  # still running
    release.set()
    writer._pending.exception()  # wait for the job to end
    assert writer.failed() is True
    with pytest.raises(OSError, match="disk full"):
        writer.close()


def test_background_writes_land_in_order_and_hold_the_snapshot(tmp_path: Path) -> None:
    model = TinyNet()
    writer = CheckpointWriter(background=True)
    path = tmp_path / "last.pt"
    expected = []
    for epoch in range(1, 4):
        with torch.no_grad():
            model.net[0].weight.fill_(float(epoch))  # type: ignore[index]
        payload = detached_copy(checkpoint_payload(model=model, meta={}, epoch=epoch))
        expected.append(payload["model"]["net.0.weight"].clone())
        writer.submit(lambda payload=payload: write_payload(path, payload))
        with torch.no_grad():
            model.net[0].weight.fill_(-1.0)  # type: ignore[index]  # training goes on while the file is written
    writer.close()
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 3
    assert torch.equal(ckpt["model"]["net.0.weight"], expected[-1])  # the snapshot, not the later weights


def test_background_write_errors_surface_at_the_next_sync(tmp_path: Path) -> None:
    writer = CheckpointWriter(background=True)

    def fail() -> None:
        raise OSError("No space left on device")

    writer.submit(fail)
    with pytest.raises(OSError, match="No space left"):
        writer.wait()
    writer.submit(lambda: None)  # the writer stays usable
    writer.close()


def test_trainer_async_and_inline_checkpoints_are_identical(fit_tiny: Any) -> None:
    _, _, run_a = fit_tiny("async", epochs=3, async_checkpoint=True)
    _, _, run_b = fit_tiny("inline", epochs=3, async_checkpoint=False)
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(run_a / "checkpoints" / name), load_checkpoint(run_b / "checkpoints" / name)
        assert a["epoch"] == b["epoch"] == (3 if name == "last.pt" else a["best_epoch"])
        for k in a["model"]:
            assert torch.equal(a["model"][k], b["model"][k]), k
        assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
