"""``mlcore compare``: one row per run, with the config keys whose values differ between the runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlcore
from mlcore.comparison import compare_runs, config_differences, format_table
from mlcore.errors import ConfigError, MlcoreError


def _run(root: Path, name: str, config: str, metrics: dict[str, float]) -> Path:
    run = root / name
    run.mkdir()
    (run / "config.toml").write_text(config, encoding="utf-8")
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return run


BASE = '[run]\nplugin = "p"\nseed = {seed}\n\n[model]\nname = "{model}"\nhidden = {hidden}\nlayers = [1, 2]\n'


def test_differing_config_keys_are_shown_and_returned(tmp_path) -> None:
    a = _run(tmp_path, "a", BASE.format(seed=0, model="lstm", hidden=32), {"mse": 0.5})
    b = _run(tmp_path, "b", BASE.format(seed=1, model="lstm", hidden=64) + "[trainer]\nlr = 0.1\n", {"mse": 0.25})
    rows = mlcore.compare([a, b])
    assert [r["config.model.hidden"] for r in rows] == [32, 64]
    assert [r["config.trainer.lr"] for r in rows] == [None, 0.1]  # missing in one run = differs
    assert not any(k in rows[0] for k in ("config.model.name", "config.model.layers", "config.run.seed"))
    assert [r["seed"] for r in rows] == [0, 1] and [r["metric.mse"] for r in rows] == [0.5, 0.25]
    keys = list(rows[0])
    assert keys.index("config.model.hidden") < keys.index("metric.mse")
    table = format_table(rows)
    assert "config.model.hidden" in table and "64" in table
    assert config_differences([a, a]) == [{}, {}]
    assert compare_runs([a]) == [{k: v for k, v in rows[0].items() if not k.startswith("config.")}]


def test_unreadable_config_is_one_line(tmp_path) -> None:
    run = tmp_path / "bad"
    run.mkdir()
    (run / "config.toml").write_bytes(b"x = '\xff'\n")
    with pytest.raises(ConfigError, match=r"config.toml: not UTF-8 text"):
        mlcore.compare([run])
    with pytest.raises(MlcoreError, match="no such run directory"):
        mlcore.compare([tmp_path / "missing"])


def test_mlcore_compare_stays_the_api_function_after_repeated_use(tmp_path) -> None:
    a = _run(tmp_path, "a", BASE.format(seed=0, model="lstm", hidden=32), {"mse": 0.5})
    first = mlcore.compare([a])
    assert callable(mlcore.compare)  # no submodule named `compare` shadows the function
    assert mlcore.compare([a]) == first
