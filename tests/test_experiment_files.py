"""`mlcore pipeline run/status` end to end on trc-control: data -> train -> evaluate -> compare -> report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlcore.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]

TINY = """
[experiment]
name = "tiny"

[[stage]]
name = "data"
kind = "data"
dataset = "lqr"
num_samples = {num}

[[stage]]
name = "train"
kind = "train"
plugin = "trc-control"
profile = "quick"
set = ["dataset.path=${{data.file}}", "dataset.test_num_samples=32", "trainer.epochs=2", "trainer.trackers=[]",
       "comparison.enabled=false", "export.enabled=false", "evaluator.timing_problems=4"]
seeds = [0, 1]
threads = 1

[[stage]]
name = "evaluate"
kind = "evaluate"
needs = ["train"]

[[stage]]
name = "compare"
kind = "compare"
needs = ["train"]

[[stage]]
name = "report"
kind = "report"
needs = ["evaluate", "compare"]
"""


def mlcore(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mlcore", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def table(stdout: str) -> dict[str, str]:
    rows = [line.split() for line in stdout.splitlines()[1:] if line.strip()]
    return {r[0]: r[2] for r in rows}


def test_example_experiment_file_is_valid() -> None:
    pytest.importorskip("mlcore_trc_control")
    exp = load_experiment(ROOT / "examples" / "experiments" / "trc_study.toml")
    assert [s.kind for s in exp.stages] == ["data", "train", "evaluate", "compare", "report"]
    assert exp.stage("train").needs == ["data"]


@pytest.mark.slow
def test_pipeline_cli_runs_caches_and_reruns_what_changed(tmp_path: Path) -> None:
    pytest.importorskip("mlcore_trc_control")
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(num=200))
    assert set(table(mlcore("pipeline", "status", str(path), cwd=tmp_path).stdout).values()) == {"pending"}

    first = mlcore("pipeline", "run", str(path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert set(table(first.stdout).values()) == {"completed"}
    out = tmp_path / "experiments" / "tiny"
    data_file = out / "data" / "lqr_dataset.npz"
    config = (out / "train" / "seed-1" / "config.toml").read_text()
    assert f'path = "{data_file}"' in config  # ${data.file} reached the train stage
    report = (out / "report" / "report.md").read_text()
    assert "evaluate.success_rate" in report and "| data | data |" in report

    again = mlcore("pipeline", "run", str(path), cwd=tmp_path)
    assert set(table(again.stdout).values()) == {"cached"}

    path.write_text(TINY.format(num=160))  # new data: everything downstream is stale and runs again
    assert set(table(mlcore("pipeline", "status", str(path), cwd=tmp_path).stdout).values()) == {"stale"}
    third = mlcore("pipeline", "run", "--json", str(path), cwd=tmp_path)
    result = json.loads(third.stdout)
    assert [s["state"] for s in result["stages"]] == ["completed"] * 5
    assert result["stages"][0]["outputs"]["file"] == str(data_file)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[stage]]\nname = "a"\nkind = "bake"\n')
    result = mlcore("pipeline", "run", str(path), cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: stage 'a': kind='bake' is not allowed "
        "(allowed: data, train, evaluate, compare, report, command, search, api)"
    ]
