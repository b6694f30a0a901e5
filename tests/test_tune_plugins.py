"""`mlcore tune` on a new supervised plugin: the printer-corrector grid search of examples/configs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "configs" / "printer_grid_search.toml"

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import mlcore_printer_corrector, optuna"], capture_output=True).returncode
    != 0,
    reason="needs the printer-corrector plugin and mlcore[tune]",
)


def mlcore(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mlcore", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=900
    )


@pytest.mark.slow
def test_grid_search_on_printer_corrector_and_its_best_config_reproduces(tmp_path):
    out = tmp_path / "study"
    res = mlcore(
        "tune", "--plugin", "printer-corrector", "--config", CONFIG, "--out", out, "--trials", "3", "--threads", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    with open(out / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["state"] for r in rows] == ["complete"] * 3
    grid = {(r["trainer.lr"], r["model.hidden_size"], r["model.num_layers"]) for r in rows}
    assert len(grid) == 3  # a grid sampler never repeats a point
    best = min(rows, key=lambda r: float(r["rmse_um"]))
    # the best config, run again as a plain run, gives the best trial's figure
    again = mlcore(
        "run", "--config", out / "best_config.toml", "--out", tmp_path / "again", "--no-progress", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-2000:]
    metrics = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert metrics["rmse_um"] == pytest.approx(float(best["rmse_um"]), rel=1e-6)
