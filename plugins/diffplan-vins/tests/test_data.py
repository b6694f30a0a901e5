"""The grid-mazes data module, its file and `mlcore data generate grid-mazes`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlcore.errors import ConfigError, DataError
from mlcore_diffplan_vins.data import GridMazes, GridMazesConfig
from mlcore_diffplan_vins.mazefile import load_named


def test_splits_items_and_dimensions() -> None:
    data = GridMazes(GridMazesConfig(size=9, num=50, seed=1)).prepare()
    sizes = [len(data.train_set()), len(data.val_set()), len(data.test_set())]
    assert sizes == [40, 5, 5]
    maps, targets = data.train_set()[0]
    assert maps.shape == (2, 9, 9) and targets.shape == (4, 9, 9)
    assert maps[1].sum() == 1 and maps[0].max() == 1
    goal = tuple(int(i) for i in (maps[1] == 1).nonzero()[0])
    assert maps[0][goal] == 0 and targets[:, goal[0], goal[1]].sum() == 0
    assert data.dimensions() == {"num_actions": 4}
    assert GridMazes(GridMazesConfig(size=9, num=20, actions=8)).prepare().dimensions() == {"num_actions": 8}


def test_same_seed_same_data_and_splits_are_disjoint() -> None:
    a = GridMazes(GridMazesConfig(size=9, num=60, seed=3)).prepare()
    b = GridMazes(GridMazesConfig(size=9, num=60, seed=3)).prepare()
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(a.mazes_of(split).walls, b.mazes_of(split).walls)
    keys = {
        split: {w.tobytes() + g.tobytes() for w, g in zip(a.mazes_of(split).walls, a.mazes_of(split).goals)}
        for split in ("train", "val", "test")
    }
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["val"] and not keys["val"] & keys["test"]


def test_generate_then_read_back(tmp_path: Path) -> None:
    data = GridMazes(GridMazesConfig(size=9, num=30, seed=2))
    [path] = data.generate(tmp_path)
    assert path.name == "mazes_m9_4abs-cc_n30_seed2.npz"
    _, _, params = load_named(path)
    assert params["size"] == 9 and params["num"] == 30 and params["generator"] == "dfs+open"
    again = GridMazes(GridMazesConfig(path=str(path))).prepare()
    np.testing.assert_array_equal(again.mazes_of("test").walls, data.mazes_of("test").walls)


def test_missing_file_and_bad_config_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="create it with `mlcore data generate grid-mazes --size 15"):
        GridMazes(GridMazesConfig(path=str(tmp_path / "x.npz"))).prepare()
    with pytest.raises(ConfigError, match="no training maze"):
        GridMazes(GridMazesConfig(size=9, num=3, val_fraction=0.5, test_fraction=0.5)).prepare()
    with pytest.raises(ValueError, match="actions"):
        GridMazesConfig(actions=6)


def test_cli_generate_maps_flags_to_fields(tmp_path: Path) -> None:
    out = tmp_path / "mazes"
    cmd = [sys.executable, "-m", "mlcore", "data", "generate", "grid-mazes", "--size", "9", "--num", "40"]
    proc = subprocess.run([*cmd, "--actions", "8", "--seed", "0", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    mazes, _, params = load_named(out / "mazes_m9_8abs-cc_n40_seed0.npz")
    assert mazes.optimal_actions.shape == (40, 8, 9, 9) and params["actions"] == 8


def test_cli_missing_file_is_one_error_line(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "mlcore", "run", "--plugin", "diffplan-vins", "--profile", "quick"]
    cmd += ["--set", f"dataset.path={tmp_path / 'none.npz'}", "--out", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: maze file not found") and "none.npz" in lines[-1]
    assert "Traceback" not in proc.stderr
