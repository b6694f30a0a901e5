"""The CLI end to end across packages: data generate -> train -> evaluate -> export -> compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "configs" / "train_trc.toml"
SMALL = [
    "--set",
    "dataset.num_samples=256",
    "--set",
    "dataset.test_num_samples=64",
    "--set",
    "trainer.epochs=2",
    "--set",
    "trainer.trackers=[]",
    "--set",
    "evaluator.timing_problems=10",
]

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import mlcore_trc_control"], capture_output=True).returncode != 0,
    reason="needs the trc-control plugin",
)


def mlcore(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLCORE_PLUGINS": "trc-control"}
    return subprocess.run(
        [sys.executable, "-m", "mlcore", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_train_evaluate_export_compare(tmp_path):
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        ok(mlcore("train", "--config", CONFIG, *SMALL, "--seed", seed, "--out", out, "--no-progress", cwd=tmp_path))
        for name in (
            "config.toml",
            "environment.json",
            "training_stats.json",
            "training_curves.png",
            "checkpoints/best.pt",
            "checkpoints/last.pt",
            "metrics.json",
            "report.md",
        ):
            assert (out / name).is_file(), name
        runs.append(out)

    best = runs[0] / "checkpoints" / "best.pt"
    metrics = json.loads(ok(mlcore("evaluate", "--checkpoint", best, "--json", cwd=tmp_path)))
    assert 0.0 <= metrics["success_rate"] <= 1.0
    assert metrics["mean_terminal_error"] > 0
    assert (runs[0] / "evaluation" / "metrics.json").is_file()

    out = ok(
        mlcore("export", "--checkpoint", best, "--format", "torchscript", "--out", tmp_path / "m.ts", cwd=tmp_path)
    )
    assert "max |exported - eager|" in out and (tmp_path / "m.ts").is_file()
    out = ok(
        mlcore(
            "export",
            "--checkpoint",
            best,
            "--format",
            "onnx",
            "--onnx-exporter",
            "legacy",
            "--out",
            tmp_path / "m.onnx",
            cwd=tmp_path,
        )
    )
    assert "(legacy exporter)" in out and (tmp_path / "m.onnx").is_file()

    rows = json.loads(ok(mlcore("compare", *runs, "--json", cwd=tmp_path)))
    assert [r["seed"] for r in rows] == [0, 1]
    for row in rows:
        assert row["params"] > 10_000 and row["epochs"] == 2 and row["best_epoch"] in (1, 2)
        assert "metric.success_rate" in row
    table = ok(mlcore("compare", *runs, cwd=tmp_path))
    assert "success_rate" in table

    # the saved config reproduces the run exactly
    again = tmp_path / "again"
    ok(mlcore("run", "--config", runs[0] / "config.toml", "--out", again, "--no-progress", cwd=tmp_path))
    first = json.loads((runs[0] / "metrics.json").read_text())
    second = json.loads((again / "metrics.json").read_text())
    assert second["mean_terminal_error"] == pytest.approx(first["mean_terminal_error"], rel=1e-6)


@pytest.mark.slow
def test_data_generate_and_bad_files(tmp_path):
    ok(mlcore("data", "generate", "lqr", "--num-samples", "32", "--seed", "1", "--out", tmp_path / "d", cwd=tmp_path))
    assert (tmp_path / "d" / "lqr_dataset.npz").is_file()

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    res = mlcore(
        "train", "--config", CONFIG, *SMALL, "--set", f"dataset.path='{bad}'", "--out", tmp_path / "r", cwd=tmp_path
    )
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(bad) in lines[0], res.stderr
    assert "Traceback" not in res.stderr

    res = mlcore("evaluate", "--checkpoint", tmp_path / "nope.pt", cwd=tmp_path)
    assert res.returncode != 0 and "nope.pt" in res.stderr and "Traceback" not in res.stderr
    res = mlcore("data", "generate", "lqr", "--num-samples", "-5", "--out", tmp_path / "d2", cwd=tmp_path)
    assert res.returncode == 2 and "num_samples" in res.stderr
