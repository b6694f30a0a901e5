"""The ``nav`` and ``ablation`` pipelines: profiles, end to end through the core, and `mlcore evaluate`."""

from __future__ import annotations

import json

import pytest

from mlcore import api
from mlcore.errors import CheckpointError, ConfigError
from mlcore.registry import get_registry


def test_profiles_structure():
    for name in ("nav", "ablation"):
        spec = get_registry().get("pipeline", name)
        assert set(spec.profiles) == {"quick", "full"}
        for profile in spec.profiles.values():  # threads follow the core's run.threads
            assert "torch_threads" not in profile.get("trainer", {})
    with pytest.raises(ConfigError, match="total_timesteps"):
        api.resolve("nav-rl", profile="quick", overrides=["trainer.total_timesteps=-3"])


def test_the_demo_profile_stays_within_its_declared_budget():
    """``mlcore run --plugin nav-rl`` (quick): bounded steps, a stop only above the 0.9 target, a full evaluation."""
    cfg = api.resolve("nav-rl", profile="quick").config
    trainer, evaluator = cfg.trainer, cfg.evaluator
    assert trainer.total_timesteps <= 10_000
    assert trainer.stop_at >= 0.95 and trainer.stop_evals >= 2  # stops only when well above the 0.9 target
    assert trainer.eval_episodes >= 20 and trainer.eval_freq <= trainer.total_timesteps // 5
    assert evaluator.episodes >= 50 and evaluator.robustness and evaluator.unseen_layouts and evaluator.baselines
    assert cfg.model.name == "sac" and cfg.model.config.her


@pytest.mark.slow
def test_quick_profile_learns_end_to_end(tmp_path):
    """HER + SAC on the sparse goal task: real learning within a shortened quick budget, then `mlcore evaluate`.

    5 000 steps (the quick profile runs 10 000): HER+SAC passes 0.9 success from about 5 000 steps
    (tools/bench/nav_rl.py, 3 seeds); the evaluation suite runs on 20 episodes instead of 50.
    """
    result = api.run(
        "nav-rl",
        profile="quick",
        out=tmp_path / "run",
        seed=0,
        progress=False,
        overrides=[
            "trainer.total_timesteps=5000",
            "trainer.eval_freq=1000",
            "trainer.eval_episodes=10",
            "evaluator.episodes=20",
        ],
    )
    m = result.metrics
    stats = json.loads((result.out_dir / "training_stats.json").read_text())
    first, best = stats["history"][0]["success_rate"], max(h["success_rate"] for h in stats["history"])
    assert first <= 0.2 and best >= 0.7, stats["history"]
    assert m["success_rate"] >= 0.6 > m["random_success_rate"]
    for name in ("report.md", "metrics.json", "training_curves.png", "checkpoints/best.pt", "plots/eval_episode.gif"):
        assert (result.out_dir / name).exists(), name
    again = api.evaluate(result.out_dir / "checkpoints" / "best.pt", out_dir=tmp_path / "eval")
    assert again["success_rate"] == pytest.approx(m["success_rate"])
    assert (tmp_path / "eval" / "metrics.json").exists()
    with pytest.raises(CheckpointError, match="not 'td3'"):
        from mlcore.training.checkpoint import build_model

        build_model(result.out_dir / "checkpoints" / "best.pt", expect="td3")


@pytest.mark.slow
def test_ablation_pipeline_quick_profile_runs_end_to_end(tmp_path):
    """The ablation pipeline (quick profile: DQN, sparse reward) through the core, on a tiny budget."""
    result = api.run(
        "nav-rl",
        pipeline="ablation",
        profile="quick",
        out=tmp_path / "abl",
        seed=0,
        progress=False,
        overrides=[
            "seeds=[0]",
            "trainer.total_timesteps=2000",
            "trainer.eval_freq=1000",
            "trainer.eval_episodes=3",
            "base_model.learning_starts=200",
        ],
    )
    out = result.out_dir
    data = json.loads((out / "ablation.json").read_text())
    assert set(data["summary"]) == {"plain", "per", "n_step"}
    for name, s in data["summary"].items():
        history = json.loads((out / name / "seed0" / "training_stats.json").read_text())["history"]
        assert [h["timesteps"] for h in history] == [1000, 2000], name
        assert s["final_success"] == [history[-1]["success_rate"]], name  # the run's own last evaluation
    assert (out / "report.md").read_text().count("| per |") >= 1
    assert (out / "plots" / "learning_curves.png").is_file()
    assert (out / "per" / "seed0" / "checkpoints" / "last.pt").is_file()
