"""Ablation analysis against hand computations."""

from __future__ import annotations

import math

import pytest


def test_ablation_analysis_hand_computed():
    from mlcore_nav_rl.ablation import analyse, render_report, steps_to_threshold

    def hist(vals):
        return [
            {"timesteps": 100 * (i + 1), "success_rate": v, "return_mean": v, "collision_rate": 0.0}
            for i, v in enumerate(vals)
        ]

    runs = {
        "plain": [hist([0.0, 0.2, 0.4]), hist([0.1, 0.3, 0.6])],
        "per": [hist([0.3, 0.7, 0.9]), hist([0.5, 0.8, 0.9])],
    }
    assert steps_to_threshold(runs["plain"][0], 0.5) == math.inf and steps_to_threshold(runs["plain"][1], 0.5) == 300
    res = analyse(runs, threshold=0.5, baseline="plain")
    assert res["summary"]["per"]["steps_to_threshold"] == [200, 100]
    assert res["summary"]["per"]["median_steps_to_threshold"] == 150
    assert res["summary"]["plain"]["final_success_mean"] == pytest.approx(0.5)
    assert res["curves"]["per"]["mean"] == pytest.approx([0.4, 0.75, 0.9])
    assert res["tests"][0]["a"] == "per" and res["tests"][0]["diff"] > 0
    text = render_report(res)
    assert "| per |" in text and "never" not in text.split("| per |")[1].split("\n")[0]


def test_ablation_runs_are_reproducible_within_one_process(tmp_path):
    """Seed k of a variant starts from the same weights whatever ran before it (paired comparisons)."""
    import torch

    from mlcore.config import structure
    from mlcore.training.checkpoint import load_checkpoint
    from mlcore_nav_rl.ablation import AblationConfig, run_ablation

    cfg = structure(
        AblationConfig,
        {
            "dataset": {"demo_steps": 16, "env": {"reward": "sparse", "n_static": 0, "max_steps": 20}},
            "algorithm": "dqn",
            "base_model": {"net_arch": [16], "batch_size": 16, "learning_starts": 50, "buffer_size": 1000},
            "variants": {"plain": {}},
            "seeds": [3],
            "trainer": {"total_timesteps": 200, "eval_freq": 100, "eval_episodes": 1, "progress": False},
        },
    )
    weights = []
    for rep in range(2):
        torch.randn(7)  # disturb the global generator between the two runs
        run_ablation(cfg, tmp_path / f"rep{rep}")
        weights.append(load_checkpoint(tmp_path / f"rep{rep}" / "plain" / "seed3" / "checkpoints" / "last.pt")["model"])
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_a_bad_variant_is_reported_before_any_run_trains(tmp_path):
    from mlcore.config import structure
    from mlcore.errors import ConfigError
    from mlcore_nav_rl.ablation import AblationConfig, run_ablation

    cfg = structure(
        AblationConfig,
        {
            "algorithm": "dqn",
            "variants": {"plain": {}, "per": {"per": True, "per_eps": 0.0}},
            "seeds": [0],
            "trainer": {"total_timesteps": 100, "eval_freq": 100, "eval_episodes": 1, "progress": False},
        },
    )
    with pytest.raises(ConfigError, match=r"variants\.per\.per_eps"):
        run_ablation(cfg, tmp_path / "abl")
    assert not (tmp_path / "abl" / "plain").exists()


def test_variants_trained_in_separate_calls_are_reused_and_analysed_together(tmp_path):
    """``variants=`` + ``reuse_completed``: runs split over processes give the analysis of one call."""
    import json

    from mlcore.config import structure
    from mlcore_nav_rl.ablation import AblationConfig, completed_history, run_ablation

    cfg = structure(
        AblationConfig,
        {
            "dataset": {"demo_steps": 16, "env": {"reward": "sparse", "n_static": 0, "max_steps": 20}},
            "algorithm": "dqn",
            "base_model": {"net_arch": [16], "batch_size": 16, "learning_starts": 50, "buffer_size": 1000},
            "variants": {"plain": {}, "n_step": {"n_step": 2}},
            "seeds": [3],
            "trainer": {"total_timesteps": 200, "eval_freq": 100, "eval_episodes": 1, "progress": False},
        },
    )
    first = run_ablation(cfg, tmp_path, variants=["n_step"], reuse_completed=True)
    assert first["summary"] == {}  # the baseline has not run yet: nothing to compare
    assert not (tmp_path / "plain").exists()
    stats = tmp_path / "n_step" / "seed3" / "training_stats.json"
    history = completed_history(stats.parent, 3, 200)
    assert history and history[-1]["timesteps"] == 200
    assert completed_history(stats.parent, 4, 200) is None  # another seed is not reused
    assert completed_history(stats.parent, 3, 300) is None  # nor another budget
    mtime = stats.stat().st_mtime_ns
    res = run_ablation(cfg, tmp_path, variants=["plain"], reuse_completed=True)
    assert stats.stat().st_mtime_ns == mtime  # n_step was not trained again
    assert set(res["summary"]) == {"plain", "n_step"}
    assert res["summary"]["n_step"]["final_success"] == [history[-1]["success_rate"]]
    assert json.loads((tmp_path / "ablation.json").read_text())["summary"].keys() == {"plain", "n_step"}
