"""Profiles of the ``nav`` pipeline (plain data: imported by the entry point, so no heavy imports)."""

from __future__ import annotations

from typing import Any

#: Profiles (config overrides) registered with the pipeline spec.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "dataset": {
            "goal_conditioned": True,
            "demo_steps": 64,
            "env": {"reward": "sparse", "n_static": 0, "n_moving": 0, "max_steps": 50, "terminate_on_collision": False},
        },
        "model": {
            "name": "sac",
            "her": True,
            "n_sampled_goal": 4,
            "her_strategy": "future",
            "net_arch": [64, 64],
            "batch_size": 128,
            "learning_starts": 500,
            "buffer_size": 50_000,
            "gamma": 0.95,
        },
        # at most 10 000 steps; stops once 19 of the 20 evaluation episodes succeed at two evaluation
        # points in a row (HER + SAC gets there after 5 000-7 000 steps), so the demo ends when the
        # robot has learned the task instead of training on (docs/plugins/nav-rl.md, "Demo time")
        "trainer": {"total_timesteps": 10_000, "eval_freq": 1_000, "eval_episodes": 20, "stop_at": 0.95},
        "evaluator": {"episodes": 50, "robustness": True, "unseen_layouts": True},
    },
    "full": {
        "dataset": {"env": {"reward": "shaped"}},
        "model": {
            "name": "sac",
            "n_step": 3,
            "curriculum": True,
            "net_arch": [256, 256],
            "batch_size": 256,
            "learning_starts": 5_000,
            "buffer_size": 500_000,
        },
        "trainer": {"total_timesteps": 1_000_000, "n_envs": 8, "eval_freq": 20_000, "eval_episodes": 50},
        "evaluator": {"episodes": 100, "stages": [0, 1, 2, 3]},
    },
}


#: Profiles of the ``ablation`` pipeline.
ABLATION_PROFILES: dict[str, dict[str, Any]] = {
    # DQN on sparse navigation in a 2 m arena: the setting where PER (default priorities) and 3-step
    # returns reach 0.8 success in fewer steps than plain DQN (tools/bench/nav_rl.py parts
    # per_nstep_paired_sparse and per_nstep_sparse)
    "quick": {
        "dataset": {
            "demo_steps": 64,
            "env": {"reward": "sparse", "n_static": 0, "max_steps": 50, "arena_size": 2.0},
        },
        "algorithm": "dqn",
        "base_model": {
            "net_arch": [64, 64],
            "batch_size": 128,
            "learning_starts": 1_000,
            "buffer_size": 100_000,
            "gamma": 0.95,
        },
        "variants": {"plain": {}, "per": {"per": True}, "n_step": {"n_step": 3}},
        "seeds": [0, 1, 2],
        "trainer": {"total_timesteps": 15_000, "eval_freq": 1_000, "eval_episodes": 10},
        "threshold": 0.8,
    },
    "full": {
        "dataset": {"env": {"reward": "shaped"}},
        "base_model": {"net_arch": [256, 256], "batch_size": 256, "learning_starts": 2_000},
        "seeds": [0, 1, 2, 3, 4],
        "trainer": {"total_timesteps": 200_000, "n_envs": 4, "eval_freq": 10_000, "eval_episodes": 50},
        "threshold": 0.7,
    },
}


#: Profiles of the ``selfplay`` pipeline.
SELFPLAY_PROFILES: dict[str, dict[str, Any]] = {
    # a check that the whole loop runs (a minute or two on one core)
    "quick": {"selfplay": {"total_timesteps": 3_000, "snapshot_every": 1_000, "eval_episodes": 20}},
    # a longer comparison over 5 seeds
    "full": {
        "selfplay": {"total_timesteps": 50_000, "snapshot_every": 5_000, "league_size": 10},
        "seeds": [0, 1, 2, 3, 4],
    },
}
