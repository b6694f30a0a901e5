"""The pipeline end to end (slow), reproducibility, and the one-line errors of bad configs and checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import mlcore
from mlcore.errors import CheckpointError, ConfigError
from mlcore_printer_corrector.streaming import StreamingPredictor

FAST = [
    'dataset.parts=["boat"]',
    "dataset.layers=sampled:5",
    "dataset.sequence_length=20",
    "dataset.slicing.layer_height=1.0",
    "model.hidden_size=16",
    "trainer.epochs=2",
    "trainer.trackers=[]",
    "evaluator.latency_repeats=20",
    "compare.streaming_samples=120",
    "compare.compensation_layers=1",
]


def run(out, extra=()):
    return mlcore.run(
        "printer-corrector", profile="quick", overrides=[*FAST, *extra], out=out, device="cpu", progress=False
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("printer") / "run")


@pytest.mark.slow
def test_the_run_writes_every_file_and_figure(quick_run):
    out = quick_run.out_dir
    for name in (
        "metrics.json",
        "report.md",
        "model.ts",
        "checkpoints/best.pt",
        "data/stats.json",
        "data/train.pt",
        "data/gcode/boat.gcode",
        "plots/trajectory_comparison.png",
        "plots/error_distribution.png",
        "plots/error_correlation.png",
        "plots/per_axis_error.png",
        "plots/compensation.png",
    ):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    for key in (
        "r2",
        "rmse_um",
        "p99",
        "latency_p99_ms",
        "arx_rmse",
        "streaming_p99_ms",
        "comp_reduction",
        "export_ok",
        "realtime_ok",
    ):
        assert key in m, key
    assert m["export_ok"] == 1.0
    assert m["streaming_max_abs_diff_mm"] < 1e-5  # TorchScript stream == eager batch
    assert m["r2"] > 0.5 and m["arx_r2"] > 0.5
    report = (out / "report.md").read_text()
    for heading in (
        "## Data",
        "## Prediction accuracy",
        "## Real time and deployment",
        "## Feed-forward compensation",
        "## Plots",
        "## All figures",
    ):
        assert heading in report
    assert "linear ARX baseline (same windows)" in report and ("PASS" in report or "FAIL" in report)


@pytest.mark.slow
def test_checkpoint_serves_the_streaming_predictor_and_rejects_other_models(quick_run, tmp_path):
    best = quick_run.out_dir / "checkpoints" / "best.pt"
    p = StreamingPredictor.from_checkpoint(best)
    for _ in range(25):
        ex, _, ms = p.predict(120.0, 100.0, 30.0, 0.0)
    assert abs(ex) < 1.0 and ms > 0
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    ckpt["meta"]["components"]["model"]["name"] = "sine_mlp"
    other = tmp_path / "other.pt"
    torch.save(ckpt, other)
    with pytest.raises(CheckpointError, match=r"holds model 'sine_mlp' .*not 'realtime_corrector'"):
        StreamingPredictor.from_checkpoint(other)


@pytest.mark.slow
def test_same_seed_same_data_weights_and_metrics(quick_run, tmp_path):
    again = run(tmp_path / "again")
    a = torch.load(quick_run.out_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(again.out_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    for key in ("r2", "rmse", "arx_rmse", "comp_rms_after_um"):
        assert again.metrics[key] == quick_run.metrics[key], key
    d1 = torch.load(quick_run.out_dir / "data" / "test.pt", weights_only=True)
    d2 = torch.load(again.out_dir / "data" / "test.pt", weights_only=True)
    assert torch.equal(d1["targets"], d2["targets"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("dataset.sequence_length=1", r"dataset\.sequence_length"),
        ("dataset.layers=every:3", r"layers='every:3' is not a layer selection"),
        ('dataset.parts=["dragon"]', r"unknown part 'dragon'"),
        ("model.num_layers=5", r"model\.num_layers"),
        ("dataset.dynamics.sim_rate=250", r"sim_rate=250 must be a whole multiple of dataset\.sample_rate=100"),
    ],
)
def test_bad_config_values_are_one_line_errors_naming_the_field(tmp_path, override, message):
    with pytest.raises((ConfigError, mlcore.MlcoreError), match=message) as info:
        run(tmp_path / "bad", [override])
    assert "\n" not in str(info.value)


def test_the_cli_prints_one_line_and_exits_non_zero(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlcore",
            "run",
            "--plugin",
            "printer-corrector",
            "--set",
            "dataset.stride=0",
            "--out",
            str(tmp_path / "cli"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "dataset.stride" in lines[0]
