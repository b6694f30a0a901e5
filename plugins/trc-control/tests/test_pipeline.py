"""End-to-end: the README demo (`mlcore run --plugin trc-control`, quick profile) and the CLI around it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

MLCORE = [sys.executable, "-m", "mlcore"]


def test_data_generate_command(tmp_path: Path) -> None:
    out = tmp_path / "lqr_train"
    done = subprocess.run(
        [*MLCORE, "data", "generate", "lqr", "--num-samples", "32", "--seed", "42", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with np.load(out / "lqr_dataset.npz") as npz:
        assert npz["control_sequences"].shape == (32, 15, 1)
        assert json.loads(str(npz["metadata"][()]))["seed"] == 42


def _pipeline(tmp_path: Path, *overrides: str):
    import torch

    from mlcore.api import resolve
    from mlcore.runs import RunContext

    small = ["dataset.num_samples=40", "dataset.test_num_samples=8", *overrides]
    resolved = resolve("trc-control", profile="quick", overrides=small)
    ctx = RunContext(tmp_path / "run", torch.device("cpu"), 0, "trc-control", "trc", "quick", resolved.config)
    return resolved.spec.build(resolved.config), ctx


def test_the_system_sizes_the_model(tmp_path: Path) -> None:
    pipe, ctx = _pipeline(tmp_path, "dataset.system=planar_double_integrator", "dataset.num_steps=12")
    pipe.check(ctx)
    model = pipe.build(ctx).model
    assert (model.state_dim, model.control_dim, model.num_steps) == (4, 2, 12)
    assert not ctx.out_dir.exists()  # check() writes nothing


def test_a_model_size_against_the_system_is_refused(tmp_path: Path) -> None:
    from mlcore.errors import ConfigError

    pipe, ctx = _pipeline(tmp_path, "model.state_dim=3")
    with pytest.raises(ConfigError, match=r"model\.state_dim=3 contradicts the data, which has state_dim=2"):
        pipe.check(ctx)


def test_old_table_names_are_read() -> None:
    from mlcore.api import resolve

    run = resolve("trc-control", profile="quick", config={"data": {"num_samples": 64}, "evaluation": {"batch_size": 8}})
    assert run.config.dataset.num_samples == 64 and run.config.evaluator.batch_size == 8


#: the ONNX export needs the core's `onnx` extra; installed alone (plain `pip install mlcore-trc-control`)
#: the run skips the export with a warning and everything else must still hold
HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


@pytest.mark.slow
def test_quick_pipeline_end_to_end(tmp_path: Path) -> None:
    import mlcore

    out = tmp_path / "run"
    result = mlcore.run("trc-control", profile="quick", out=out, device="cpu", progress=False)
    m = result.metrics
    for name in (
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "training_stats.json",
        "training_curves.png",
        "metrics.json",
        "evaluation_results.json",
        "comparison_results.json",
        "report.md",
        "plots/comparison.png",
        "plots/cycle_sweep.png",
        *(["model.onnx"] if HAS_ONNX else []),
        "data/lqr_train/lqr_dataset.npz",
    ):
        assert (out / name).exists(), name
    assert (out / "model.onnx").exists() == HAS_ONNX
    # a trained TRC is far better than random controls and its export matches the eager model
    comparison = json.loads((out / "comparison_results.json").read_text())
    rows = {r["method"]: r for r in comparison["baselines"]}
    assert m["mean_terminal_error"] < 0.1 * rows["random"]["mean_terminal_error"]
    assert m["success_rate"] > 0.95
    # the linear, clipped-linear and same-size MLP baselines sit beside TRC, costs against the optimum
    assert {"linear (least squares)", "linear, clipped to the box", "oracle (optimal expert)"} <= set(rows)
    mlp = next(r for r in rows.values() if r["method"].startswith("MLP"))
    assert abs(mlp["parameters"] - rows["TRC"]["parameters"]) <= 0.02 * rows["TRC"]["parameters"]
    assert rows["oracle (optimal expert)"]["cost_gap_vs_oracle"] == pytest.approx(0.0, abs=1e-12)
    if HAS_ONNX:
        assert m["export_ok"] == 1.0 and m["onnx_ms_batch1"] > 0.0
    else:
        assert "export_ok" not in m and "onnx_ms_batch1" not in m
    assert len(comparison["generalisation"]) == 7
    stats = json.loads((out / "training_stats.json").read_text())
    history = stats["history"] if isinstance(stats, dict) else stats
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    report = (out / "report.md").read_text()
    assert "optimal" in report and "## Generalisation" in report and "linear, clipped to the box" in report

    # `mlcore evaluate` / `mlcore export` need nothing but the checkpoint
    ckpt = out / "checkpoints" / "best.pt"
    done = subprocess.run([*MLCORE, "evaluate", "--checkpoint", str(ckpt), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again = json.loads((out / "evaluation" / "metrics.json").read_text())
    assert again["mean_terminal_error"] == pytest.approx(m["mean_terminal_error"], rel=1e-5)
    done = subprocess.run(
        [*MLCORE, "export", "--checkpoint", str(ckpt), "--format", "onnx"], capture_output=True, text=True
    )
    if HAS_ONNX:
        assert done.returncode == 0, done.stderr
        assert (out / "checkpoints" / "best.onnx").exists()
    else:  # one line naming what to install, no traceback
        assert done.returncode != 0 and "Traceback" not in done.stderr and "onnx" in done.stderr, done.stderr

    # a missing data file: one line naming the file and the command, non-zero exit, no traceback
    (out / "data" / "lqr_test" / "lqr_dataset.npz").unlink()
    done = subprocess.run([*MLCORE, "evaluate", "--checkpoint", str(ckpt)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "lqr_test/lqr_dataset.npz" in done.stderr and "mlcore data generate lqr" in done.stderr


def test_a_nonlinear_system_bounds_the_outputs_and_drops_the_linear_projection(tmp_path: Path) -> None:
    pipe, ctx = _pipeline(tmp_path, "dataset.system=vanderpol", "dataset.num_steps=8", "dataset.num_samples=12")
    pipe.check(ctx)
    parts = pipe.build(ctx)
    model = parts.model
    assert model.projection is None and model.config.output_bound and model.num_steps == 8
    assert float(model.output_limit) == 2.0
    problems = parts.data.train_set().problems
    assert float(model(problems * 50).abs().max()) <= 2.0  # far outside the data: still inside the box


def test_a_linear_horizon_range_makes_the_projection_horizon_aware(tmp_path: Path, monkeypatch) -> None:
    import torch

    from mlcore.errors import ConfigError
    from mlcore_trc_control.pipeline import learned_baselines, refinement

    pipe, ctx = _pipeline(tmp_path, "dataset.horizon_range=[3.0, 6.0]", "dataset.num_samples=12")
    pipe.check(ctx)
    parts = pipe.build(ctx)
    model = parts.model
    assert model.projection.horizon_aware and not model.config.output_bound
    assert model.config.projection_horizons == [3.0, 6.0]
    train = parts.data.train_set().problem_set
    horizons = train.problems()[:, -1]
    assert float(horizons.min()) >= 3.0 and float(horizons.max()) <= 6.0 and float(horizons.std()) > 0.3
    # the expert's labels are feasible: projected, they stay put and reach x_N = r under each
    # problem's own discretisation (the data set's rollout)
    with torch.no_grad():
        projected = model.projection(torch.as_tensor(train.problems()), torch.as_tensor(train.control_sequences))
    np.testing.assert_allclose(projected.numpy(), train.control_sequences, atol=1e-9)
    # the linear policy's "+ terminal projection" row and the MLP baseline use the same per-problem maps
    starts: dict[str, np.ndarray] = {}
    baselines = learned_baselines(ctx, parts.config, model, parts.data, train, warm_starts=starts)
    rows = {name: controls for name, controls, _ in baselines}
    mlp = next(n for n in rows if n.startswith("MLP"))
    for name in ("linear + terminal projection", mlp):
        errors = train.terminal_errors(train.rollout(rows[name]))
        assert np.abs(rows[name]).max() <= train.system.control_limit and errors.max() < 1e-3, name
    # the iLQR warm starts are the very plans of those rows, handed out by the code that made them
    assert list(starts) == ["linear, clipped to the box", "MLP"]
    assert starts["linear, clipped to the box"] is rows["linear, clipped to the box"] and starts["MLP"] is rows[mlp]
    seen: dict[str, Any] = {}

    def table(problems, warm_starts, iterations, *, threshold):
        seen.update(warm_starts)
        return []

    monkeypatch.setattr("mlcore_trc_control.refinement.refinement_table", table)
    monkeypatch.setattr("mlcore_trc_control.refinement.plot_refinement", lambda rows, path: None)
    assert refinement(ctx, parts.config, model, train, starts) == []
    assert list(seen) == ["TRC", "linear, clipped to the box", "MLP", "zeros", "LQR on the linearisation"]
    assert seen["linear, clipped to the box"] is starts["linear, clipped to the box"] and seen["MLP"] is starts["MLP"]
    assert seen["TRC"].shape == seen["zeros"].shape == train.control_sequences.shape and seen["TRC"].any()
    pipe, ctx = _pipeline(tmp_path, "dataset.horizon_range=[3.0, 6.0]", "model.rollout_weight=1.0")
    with pytest.raises(ConfigError, match=r"model\.rollout_weight/model\.cost_weight use one fixed discretisation"):
        pipe.check(ctx)


@pytest.mark.slow
def test_nonlinear_pipeline_end_to_end_and_evaluate_from_the_checkpoint(tmp_path: Path) -> None:
    import mlcore

    out = tmp_path / "run"
    overrides = [
        "dataset.system=vanderpol",
        "dataset.num_steps=10",
        "dataset.num_samples=48",
        "dataset.test_num_samples=12",
        "dataset.horizon_range=[4.0, 6.0]",
        "trainer.epochs=2",
        "model.rollout_weight=1.0",
        "comparison.generalisation_samples=4",
        "comparison.sweep_cycles=[1,3]",
        "comparison.refine_iterations=[0,2]",
        "evaluator.timing_problems=5",
        "closed_loop.enabled=true",
        "closed_loop.problems=3",
        "closed_loop.replan_every=5",
        "closed_loop.dagger_rounds=1",
        "closed_loop.dagger_problems=4",
        "closed_loop.dagger_states=4",
        "closed_loop.dagger_epochs=1",
        "closed_loop.finetune_steps=3",
        "closed_loop.finetune_batch_size=8",
        "closed_loop.finetune_eval_problems=4",
        "closed_loop.select_cycles=2",
        "closed_loop.select_polish_iterations=1",
        "closed_loop.select_with_lqr=true",
        "closed_loop.select_jitter=[0.1, 0.0]",
        "closed_loop.dagger_with_selection=true",
    ]
    result = mlcore.run("trc-control", profile="quick", overrides=overrides, out=out, device="cpu", progress=False)
    loop = json.loads((out / "closed_loop_results.json").read_text())
    methods = {r["method"] for r in loop["rows"]}
    assert methods == {
        "TRC",
        "linear, clipped to the box",
        "MLP, clipped to the box",
        "TRC + DAgger (1 rounds, selection in the loop)",
        "MLP + DAgger (1 rounds, selection in the loop)",
        "TRC + DAgger (1 rounds, selection in the loop) + closed-loop fine-tuning (3 steps)",
        "MLP + DAgger (1 rounds, selection in the loop) + closed-loop fine-tuning (3 steps)",
        "expert (optimal)",
        *(
            f"{name} + plan selection ({what}) + 1 iLQR iterations"
            for name, what in [
                ("TRC", "2 cycles, jittered states + LQR"),
                ("MLP", "its one plan, jittered states + LQR"),
                ("linear", "its one plan, jittered states + LQR"),
                ("TRC + DAgger (1 rounds, selection in the loop)", "2 cycles, jittered states + LQR"),
                ("MLP + DAgger (1 rounds, selection in the loop)", "its one plan, jittered states + LQR"),
                (
                    "TRC + DAgger (1 rounds, selection in the loop) + closed-loop fine-tuning (3 steps)",
                    "2 cycles, jittered states + LQR",
                ),
                (
                    "MLP + DAgger (1 rounds, selection in the loop) + closed-loop fine-tuning (3 steps)",
                    "its one plan, jittered states + LQR",
                ),
                ("LQR on the linearisation", "its one plan"),
            ]
        ),
    }
    selected = [r for r in loop["rows"] if "plan selection" in r["method"] and r["loop"] == "closed"]
    # 3 problems, 2 re-plans each: every re-plan after the first keeps the tail or switches
    assert all(r["selection"]["kept"] + r["selection"]["switched"] == 3 for r in selected)
    assert "select_closed_loop_success_rate" in result.metrics
    assert "plan selection" in loop["definitions"]
    assert [row["step"] for row in loop["finetune"]["TRC"]] == [0, 3]
    assert (out / "closed_loop" / "mlp_finetuned.pt").exists()
    assert "finetune_closed_loop_cost_gap" in result.metrics
    expert = {r["loop"]: r for r in loop["rows"] if r["method"] == "expert (optimal)"}
    assert expert["open"]["success_rate"] == 1.0 and expert["closed"]["success_rate"] == 1.0
    assert expert["closed"]["cost_gap"] == pytest.approx(0.0, abs=1e-3)
    assert (out / "closed_loop" / "trc_dagger.pt").exists()
    assert "closed_loop_success_rate" in result.metrics and "dagger_closed_loop_cost_gap" in result.metrics
    assert "Open vs closed loop" in (out / "report.md").read_text()
    comparison = json.loads((out / "comparison_results.json").read_text())
    assert [r["tolerance"] for r in comparison["halting"]] == [1.0, 0.1, 0.03, 0.01, 0.003, 0.0]
    refined = {(r["warm_start"], r["iterations"]): r for r in comparison["refinement"]}
    starts = ["TRC", "linear, clipped to the box", "MLP", "zeros", "LQR on the linearisation"]
    assert sorted(refined) == sorted((s, k) for s in starts for k in (0, 2))
    assert all(refined[(s, 2)]["mean_cost"] <= refined[(s, 0)]["mean_cost"] * (1 + 1e-12) for s in starts)
    assert "Learned plans as iLQR warm starts" in (out / "report.md").read_text()
    assert (out / "plots" / "refinement.png").exists()
    rows = {r["method"]: r for r in comparison["baselines"]}
    assert "LQR on the linearisation (closed loop, clipped to the box)" in rows
    assert rows["oracle (optimal expert)"]["success_rate"] == 1.0
    assert all(r["limit_violation_rate"] == 0.0 for r in rows.values() if r["method"] != "linear (least squares)")
    assert [r["scenario"] for r in comparison["generalisation"]][-4:-1] == [
        "horizon 4 s (x0.8)",
        "horizon 5 s (x1)",
        "horizon 6 s (x1.2)",
    ]
    ckpt = out / "checkpoints" / "best.pt"
    done = subprocess.run([*MLCORE, "evaluate", "--checkpoint", str(ckpt), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again = json.loads((out / "evaluation" / "metrics.json").read_text())
    assert again["lqr_cost"] == pytest.approx(result.metrics["lqr_cost"], rel=1e-5)
