"""The ``selfplay`` pipeline through the public API: files written, headline metrics, report."""

from __future__ import annotations

import json

import pytest


def test_selfplay_pipeline_runs_from_the_api(tmp_path):
    from mlcore import api

    config = {
        "selfplay": {
            "total_timesteps": 300,
            "snapshot_every": 100,
            "learning_starts": 100,
            "batch_size": 32,
            "buffer_size": 1000,
            "net_arch": [16],
            "eval_episodes": 2,
        },
        "seeds": [0, 1],
    }
    res = api.run("nav-rl", pipeline="selfplay", config=config, out=tmp_path / "sp", device="cpu", progress=False)
    metrics = res.metrics
    data = json.loads((tmp_path / "sp" / "selfplay.json").read_text())
    assert [r["seed"] for r in data["per_seed"]] == [0, 1]
    assert metrics["league_unseen_success"] == pytest.approx(data["summary"]["league"]["unseen_success_mean"])
    league = json.loads((tmp_path / "sp" / "league_seed1.json").read_text())
    assert [m["step"] for m in league["members"]] == [0, 100, 200, 300]
    assert (tmp_path / "sp" / "scripted_seed0.zip").is_file()
    assert "Wilcoxon" in (tmp_path / "sp" / "report.md").read_text()


def test_finished_seeds_are_reused_not_retrained(tmp_path):
    from mlcore_nav_rl.selfplay.pipeline import run_selfplay
    from mlcore_nav_rl.selfplay.training import SelfPlayConfig

    cfg = SelfPlayConfig(
        total_timesteps=200,
        snapshot_every=100,
        learning_starts=100,
        batch_size=16,
        buffer_size=500,
        net_arch=[8],
        eval_episodes=1,
        compare_scripted=False,
    )
    first = run_selfplay(cfg, tmp_path, [0, 1], reuse_completed=True, train_seeds=[1])
    assert [r["seed"] for r in first["per_seed"]] == [1]
    mtime = (tmp_path / "seed1.json").stat().st_mtime_ns
    both = run_selfplay(cfg, tmp_path, [0, 1], reuse_completed=True, train_seeds=[0])
    assert (tmp_path / "seed1.json").stat().st_mtime_ns == mtime  # seed 1 came from its file
    assert [r["seed"] for r in both["per_seed"]] == [0, 1]
    assert both["per_seed"][1] == first["per_seed"][0]
