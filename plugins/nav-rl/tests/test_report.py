"""``report.md``: a results section built from the run's own figures."""

from __future__ import annotations

from mlcore_nav_rl.agent import SACConfig
from mlcore_nav_rl.envs import NavEnvConfig
from mlcore_nav_rl.report import DEFINITIONS, report_markdown
from mlcore_nav_rl.trainer import SB3TrainerConfig


def _metrics() -> dict[str, float]:
    m = {"success_rate": 0.98, "goals_reached": 0.96, "return_mean": -7.5, "collision_rate": 0.0, "spl": 0.81}
    for key, s in (("random", 0.02), ("planner", 0.5)):
        m |= {f"{key}_success_rate": s, f"{key}_return_mean": -40.0, f"{key}_collision_rate": 0.3, f"{key}_spl": 0.1}
    for key, s in (("noise", 0.91), ("delay", 0.83), ("dropout", 0.77), ("unseen", 0.97)):
        m |= {f"{key}_success_rate": s, f"{key}_return_mean": -9.0, f"{key}_collision_rate": 0.01}
    return m


def test_report_reads_like_a_results_section(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "training_curves.png").write_bytes(b"png")
    (tmp_path / "plots" / "eval_episode.gif").write_bytes(b"gif")
    history = [
        {"timesteps": 2000, "success_rate": 0.1, "return_mean": -45.0, "collision_rate": 0.0},
        {"timesteps": 4000, "success_rate": 0.9, "return_mean": -9.0, "collision_rate": 0.0},
    ]
    text = report_markdown(
        title="nav-rl: sac (quick)",
        algorithm="sac",
        model_config=SACConfig(her=True, net_arch=[64, 64]),
        env_config=NavEnvConfig(reward="sparse", n_static=0),
        trainer_config=SB3TrainerConfig(eval_freq=2000, eval_episodes=20),
        history=history,
        best_epoch=2,
        metrics=_metrics(),
        episodes=50,
        run_dir=tmp_path,
        goal_conditioned=True,
    )
    lines = text.splitlines()
    trained = lines[lines.index("## What was trained") + 2]
    assert "SAC with HER (future, 4 relabelled goals" in trained and "for 4000 environment steps" in trained
    assert "-1 per step until within the goal radius" in trained  # the reward of the goal-conditioned task
    assert "| 4000 | 0.90 | -9.00 | 0.00 |" in lines and "![learning curves](training_curves.png)" in lines
    assert f"| success_rate | 0.98 | {DEFINITIONS['success_rate']} |" in lines
    assert f"| goals_reached | 0.96 | {DEFINITIONS['goals_reached']} |" in lines  # why it differs from success
    assert "| potential-field planner | 0.50 | -40.00 | 0.30 | 0.10 |" in lines
    assert "| random | 0.02 | -40.00 | 0.30 | 0.10 |" in lines
    assert "| sensor dropout | 0.77 | -9.00 | 0.01 |" in lines and "| unseen layouts | 0.97 | -9.00 | 0.01 |" in lines
    assert "![evaluation episode](plots/eval_episode.gif)" in lines
    assert "evaluation point 2" in text
    # headline figures, not a dump of every metric
    assert sum(line.startswith("| ") for line in lines) < 25
