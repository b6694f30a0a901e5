"""A released model's directory and info file: every recorded figure equals an independent measurement."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from mlcore.config import load_file
from mlcore.errors import DataError
from mlcore_diffplan_vins.release.layout import (
    INFO_FIELDS,
    ValidationView,
    read_info,
    released_models,
    validation_metrics,
)


def _info(run: Path, category: str, name: str) -> dict[str, Any]:
    return json.loads((run / "pretrained_models" / category / name / f"{name}_info.json").read_text())


def test_layout_is_what_mlcore_evaluate_reads(release_run: Path) -> None:
    root = release_run / "pretrained_models"
    assert released_models(root) == {
        "SymVIN_maze15": root / "grid" / "SymVIN_maze15",
        "VIN_maze15": root / "grid" / "VIN_maze15",
    }
    model = root / "grid" / "VIN_maze15"
    for rel in ("checkpoints/best.pt", "config.toml", "evaluation/metrics.json", "report.md", "VIN_maze15_info.json"):
        assert (model / rel).is_file(), rel
    ckpt = torch.load(model / "checkpoints" / "best.pt", weights_only=True)
    assert set(ckpt) == {"kind", "format", "model", "meta"}  # no optimizer state in a released file
    assert ckpt["meta"]["release"] == {"name": "VIN_maze15", "category": "grid", "algorithm": "VIN"}
    assert {"README.md", "QUICKSTART.md", "release.json"} <= {p.name for p in root.iterdir()}


def test_info_fields_equal_measured_values(release_run: Path) -> None:
    from mlcore_diffplan_vins.evaluation import GridRolloutEvaluator
    from mlcore_diffplan_vins.release import load_pretrained

    info = _info(release_run, "grid", "VIN_maze15")
    assert set(INFO_FIELDS) <= set(info)
    model_dir = release_run / "pretrained_models" / "grid" / "VIN_maze15"
    ckpt_path = model_dir / "checkpoints" / "best.pt"
    cfg = info["training_config"]["model"]
    lh, lq, a = cfg["hidden_channels"], cfg["q_channels"], cfg["num_actions"]
    # VIN by hand: h = 3x3 conv 2 -> l_h with bias; r = 1x1 l_h -> 1; q_r, q_v = 3x3 1 -> l_q; policy 1x1 l_q -> A
    assert info["parameter_count"] == (2 * lh * 9 + lh) + lh + 2 * (lq * 9) + lq * a == 1520
    assert info["file_size_bytes"] == ckpt_path.stat().st_size
    assert info["sha256"] == hashlib.sha256(ckpt_path.read_bytes()).hexdigest()
    assert (info["algorithm"], info["model"], info["category"]) == ("VIN", "vin", "grid")
    assert info["training_config"] == load_file(release_run / "runs" / "VIN_maze15" / "config.toml")
    stats = json.loads((release_run / "runs" / "VIN_maze15" / "training_stats.json").read_text())
    assert info["final_loss"]["train"] == stats["history"][-1]["train_loss"]
    assert info["final_loss"]["val"] == stats["history"][-1]["val_loss"]
    assert info["training_time_seconds"] == pytest.approx(sum(r["seconds"] for r in stats["history"]))
    created = dt.datetime.fromisoformat(info["created"])
    assert created.tzinfo is not None and abs(dt.datetime.now(dt.timezone.utc) - created) < dt.timedelta(hours=2)
    # accuracies: the evaluator on the test and the validation mazes of the same data, computed here
    loaded = load_pretrained("VIN_maze15", release_run)
    from mlcore import api

    data = api.rebuild_data(loaded.checkpoint, ckpt_path)
    ev = GridRolloutEvaluator()
    ev.config.max_mazes = 0
    test = ev.score(loaded.model, data.mazes_of("test").subset(slice(0, 8)))
    val = ev.score(loaded.model, data.mazes_of("val").subset(slice(0, 8)))
    assert info["test_accuracy"] == pytest.approx(test["action_accuracy"], abs=1e-12)
    assert info["validation_accuracy"] == pytest.approx(val["action_accuracy"], abs=1e-12)
    assert info["validation_accuracy"] != info["test_accuracy"]  # two different splits
    recorded = json.loads((model_dir / "evaluation" / "metrics.json").read_text())
    assert recorded["action_accuracy"] == info["test_accuracy"] == info["test_metrics"]["action_accuracy"]


def test_validation_view_swaps_the_split_only() -> None:
    class Data:
        def prepare(self) -> Data:
            return self

        def val_set(self) -> str:
            return "VAL"

        def test_set(self) -> str:
            return "TEST"

        def mazes_of(self, split: str) -> str:
            return split.upper()

        size = 7

    view = ValidationView(Data())
    assert view.prepare() is view
    assert (view.test_set(), view.mazes_of("test"), view.mazes_of("train"), view.mazes_of(split="test")) == (
        "VAL",
        "VAL",
        "TRAIN",
        "VAL",
    )
    assert view.size == 7


def test_no_validation_split_gives_no_validation_metrics(release_run: Path, tmp_path: Path) -> None:
    from mlcore.training.checkpoint import load_checkpoint, write_payload

    src = release_run / "pretrained_models" / "grid" / "VIN_maze15" / "checkpoints" / "best.pt"
    ckpt = load_checkpoint(src)
    ckpt.pop("path")
    ckpt["meta"]["components"]["dataset"]["config"]["val_fraction"] = 0.0
    write_payload(tmp_path / "c.pt", ckpt)
    assert validation_metrics(tmp_path / "c.pt") == {}


def test_read_info_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "x_info.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(DataError, match=r"x_info.json: info file lacks category, algorithm"):
        read_info(tmp_path / "x_info.json")
    (tmp_path / "y_info.json").write_text("{not json")
    with pytest.raises(DataError, match=r"y_info.json: not a readable info file"):
        read_info(tmp_path / "y_info.json")
