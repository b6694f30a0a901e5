"""compare: the job plan (per-model settings, groups), failures kept apart, the end-to-end quick run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mlcore
from mlcore.api import resolve
from mlcore.runs import RunContext
from mlcore_continuous_dynamics.compare import ComparePipeline

TINY = [
    "dataset.episodes=8",
    "dataset.episode_seconds=3.5",
    "dataset.sequence_length=5",
    "dataset.horizon=8",
    "evaluator.horizon=8",
    "evaluator.max_rollout_windows=16",
    "trainer.batch_size=32",
    "epochs_scale=0.05",
]


def _pipeline(*overrides: str, profile: str = "full") -> tuple[ComparePipeline, RunContext]:
    resolved = resolve("continuous-dynamics", profile=profile, overrides=list(overrides))
    ctx = RunContext(
        Path("/tmp/x"), torch.device("cpu"), 3, "continuous-dynamics", "dynamics", profile, resolved.config
    )
    return resolved.spec.build(resolved.config), ctx


def test_jobs_carry_the_plan_settings_and_run_the_fast_group_first():
    pipe, ctx = _pipeline()
    jobs = pipe.jobs(ctx, "/data")
    assert [j.name for j in jobs] == [
        "linear_dynamics",
        "gru_dynamics",
        "gru_dynamics-without-all",
        "lstm_predictor",
        "neural_ode",
        "vae_rnn_hybrid",
    ]
    assert [j.group for j in jobs] == ["fast", "fast", "fast", "heavy", "heavy", "heavy"]
    by = {j.name: j.config for j in jobs}
    assert by["linear_dynamics"]["trainer"]["epochs"] == 30
    assert by["gru_dynamics"]["model"] == {"name": "gru_dynamics", "hidden_dim": 96}
    assert by["neural_ode"]["trainer"]["lr"] == 5e-4 and by["neural_ode"]["trainer"]["batch_size"] == 16
    assert by["neural_ode"]["trainer"]["epochs"] == 80 and by["vae_rnn_hybrid"]["trainer"]["epochs"] == 70
    assert by["lstm_predictor"]["trainer"]["patience"] == 15 and by["lstm_predictor"]["trainer"]["batch_size"] == 32
    assert all(c["dataset"]["path"] == "/data" and c["run"]["seed"] == 3 for c in by.values())
    ablation = by["gru_dynamics-without-all"]
    assert ablation["dataset"]["withhold"] == ["wind", "density", "temperature", "rain"]
    assert ablation["evaluator"]["permutation"] is False


def test_quick_profile_scales_every_models_epochs():
    pipe, ctx = _pipeline(profile="quick")
    epochs = {j.name: j.config["trainer"]["epochs"] for j in pipe.jobs(ctx, "/data")}
    assert epochs["linear_dynamics"] == round(30 * 0.15) and epochs["neural_ode"] == 12


def test_a_bad_per_model_setting_is_one_line_before_anything_runs(tmp_path):
    with pytest.raises(mlcore.ConfigError, match=r"model_settings.neural_ode: .*solver='rk5' is not allowed"):
        mlcore.run(
            "continuous-dynamics",
            overrides=['model_settings.neural_ode.model.solver="rk5"'],
            out=tmp_path / "run",
            progress=False,
        )
    assert not (tmp_path / "run").exists()


def test_a_failing_model_is_reported_and_the_others_kept(tmp_path, monkeypatch):
    """In-process scheduling (parallel.processes=false): neural_ode raises, linear's results survive."""
    from mlcore_continuous_dynamics.models.ode import NeuralODE

    def broken(self, *args):
        raise RuntimeError("solver blew up")

    monkeypatch.setattr(NeuralODE, "predict", broken)
    result = mlcore.run(
        "continuous-dynamics",
        overrides=[
            *TINY,
            'models=["linear_dynamics", "neural_ode"]',
            "ablation.enabled=false",
            "parallel.processes=false",
        ],
        out=tmp_path / "run",
        device="cpu",
        threads=1,
        progress=False,
    )
    assert result.metrics["models_completed"] == 1 and result.metrics["models_failed"] == 1
    failed = json.loads((tmp_path / "run" / "neural_ode_training_results.json").read_text())
    assert failed["status"] == "failed" and "solver blew up" in failed["error"]
    done = json.loads((tmp_path / "run" / "linear_dynamics_training_results.json").read_text())
    assert done["status"] == "completed" and done["metrics"]["mse"] > 0
    assert (tmp_path / "run" / "checkpoints" / "linear_dynamics_best.pt").is_file()
    report = (tmp_path / "run" / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| `neural_ode` |"))
    assert "failed: " in row and "solver blew up" in row


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    """`mlcore run --plugin continuous-dynamics` (quick, shrunk): five models, references, ablation, report."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "mlcore", "run", "--plugin", "continuous-dynamics", "--profile", "quick"]
    args += [x for item in TINY for x in ("--set", item)] + ["--threads", "1", "--out", str(out)]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    comparison = json.loads((out / "comparison.json").read_text())
    rows = {r["name"]: r for r in comparison["rows"]}
    assert set(rows) == {
        "linear_dynamics",
        "gru_dynamics",
        "lstm_predictor",
        "neural_ode",
        "vae_rnn_hybrid",
        "persistence",
        "true_model",
    }
    assert all(r["status"] in ("completed", "reference") for r in rows.values())
    assert all(len(r["curve"]) == 8 for r in rows.values())
    assert rows["true_model"]["mse"] < rows["persistence"]["mse"]
    assert comparison["ablation"][0]["withheld"] == "all" and comparison["ablation"][0]["mse"] > 0
    for model in ("linear_dynamics", "neural_ode"):
        assert (out / f"{model}_training_results.json").is_file()
        assert (out / "checkpoints" / f"{model}_best.pt").is_file()
    report = (out / "report.md").read_text()
    for heading in ("## What was run", "## Headline", "## Comparison", "## Weather ablation", "![rollout_error]"):
        assert heading in report
    assert (out / "plots" / "rollout_error.png").is_file()
