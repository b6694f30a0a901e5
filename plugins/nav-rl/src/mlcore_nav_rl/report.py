"""``report.md`` of a ``nav`` run, written like the results section of a paper.

What was trained (algorithm, strategies, task, budget), the learning curve, the headline
figures with what each one means, the baselines on the very same episodes, robustness and
unseen layouts, per-stage figures, and the evaluation GIF. Every figure comes from the run's
``metrics`` and ``training_stats.json`` history; nothing is typed in by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: what the headline figures mean (shown beside the numbers)
DEFINITIONS: dict[str, str] = {
    "success_rate": "fraction of evaluation episodes in which the robot reached every goal of the episode "
    "(before the step budget ran out, and, with terminate-on-collision, before any collision)",
    "goals_reached": "goals reached per episode, counted at the episode's end; where episodes go on after the "
    "last goal (goal-conditioned / HER runs) that goal counts only if the robot is still on it at the last "
    "step, so with one goal it can be below the success rate",
    "return_mean": "mean undiscounted episode return (the reward stated above)",
    "collision_rate": "fraction of episodes with at least one collision",
    "spl": "success weighted by path length: success x straight-line length / max(travelled, straight-line)",
    "path_efficiency": "straight-line / travelled length, on successful episodes only (1 = straight path)",
    "episode_length": "mean steps per episode",
}


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "n/a" if value is None else str(value)


def _strategies(model_config: Any) -> str:
    c = model_config
    parts = []
    if getattr(c, "her", False):
        parts.append(f"HER ({c.her_strategy}, {c.n_sampled_goal} relabelled goals per transition)")
    if getattr(c, "per", False):
        clip = f"|TD| clipped at {c.per_td_clip:g}" if c.per_td_clip > 0 else "unclipped |TD|"
        parts.append(f"PER (alpha {c.per_alpha:g}, beta {c.per_beta:g} -> 1, eps {c.per_eps:g}, {clip})")
    if getattr(c, "n_step", 1) > 1:
        parts.append(f"{c.n_step}-step returns")
    if getattr(c, "curriculum", False):
        parts.append(f"curriculum over {len(c.curriculum_config.stages)} stages")
    return ", ".join(parts) or "no extra strategy (uniform replay, 1-step returns)"


def _reward(env: Any, goal_conditioned: bool) -> str:
    if goal_conditioned:
        return (
            "sparse reward (-1 per step until within the goal radius, then 0)"
            if env.reward == "sparse"
            else "shaped reward (-distance to the goal / arena size per step)"
        )
    if env.reward == "sparse":
        return "sparse reward (+1 per goal, -1 per collision)"
    return (
        f"shaped reward (progress towards the goal, +{env.goal_bonus:g} per goal, "
        f"-{env.collision_penalty:g} per collision, -{env.step_cost:g} per step)"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(
    *,
    title: str,
    algorithm: str,
    model_config: Any,
    env_config: Any,
    trainer_config: Any,
    history: Sequence[Mapping[str, Any]],
    best_epoch: int,
    metrics: Mapping[str, float],
    episodes: int,
    run_dir: str | Path,
    goal_conditioned: bool = False,
) -> str:
    """The Markdown text of ``report.md`` for one ``nav`` run."""
    m, env, run = metrics, env_config, Path(run_dir)
    steps = history[-1]["timesteps"] if history else 0
    obstacles = f"{env.n_static} static and {env.n_moving} moving obstacles"
    parts = [
        f"# {title}",
        "",
        "## What was trained",
        "",
        f"{algorithm.upper()} with {_strategies(model_config)}, network {list(model_config.net_arch)}, "
        f"for {steps} environment steps on {trainer_config.n_envs} environment(s). Task: a "
        f"{env.robot.replace('_', '-')} robot with {env.action_type} actions in a {env.arena_size:g} m arena, "
        f"{_reward(env, goal_conditioned)}, {env.n_goals} goal(s), {obstacles}, "
        f"at most {env.max_steps} steps per episode.",
        "",
        "## Learning curve",
        "",
        f"Every {trainer_config.eval_freq} steps the policy was evaluated on {trainer_config.eval_episodes} "
        f"seeded episodes (`training_stats.json`). The final evaluation below uses `checkpoints/best.pt` "
        f"(evaluation point {best_epoch}, best {trainer_config.monitor}"
        + (", selected on the final curriculum stage" if getattr(model_config, "curriculum", False) else "")
        + ").",
        "",
    ]
    if (run / "training_curves.png").exists():
        parts += ["![learning curves](training_curves.png)", ""]
    if history:
        stage = any("stage" in h for h in history)
        header = ["steps", "success", "return", "collisions"] + (["stage"] if stage else [])
        rows = [
            [h["timesteps"], h["success_rate"], h["return_mean"], h["collision_rate"]]
            + ([h.get("stage", "")] if stage else [])
            for h in history
        ]
        parts += [_table(header, rows), ""]
    parts += [
        "## Results",
        "",
        f"On {episodes} seeded evaluation episodes of the training task (fresh random layouts):",
        "",
        _table(
            ["figure", "value", "meaning"],
            [[k, m[k], DEFINITIONS[k]] for k in DEFINITIONS if k in m],
        ),
        "",
    ]
    if "random_success_rate" in m:
        parts += [
            "## Against the baselines",
            "",
            "The same episodes (same seeds and layouts) driven by a uniformly random policy and by a scripted "
            "potential-field planner that sees only the range sensors and the goal:",
            "",
            _table(
                ["policy", "success", "return", "collisions", "SPL"],
                [
                    ["trained agent", m["success_rate"], m["return_mean"], m["collision_rate"], m.get("spl")],
                    *[
                        [
                            name,
                            m[f"{key}_success_rate"],
                            m[f"{key}_return_mean"],
                            m[f"{key}_collision_rate"],
                            m.get(f"{key}_spl"),
                        ]
                        for key, name in (("planner", "potential-field planner"), ("random", "random"))
                    ],
                ],
            ),
            "",
        ]
    rows = [
        [label, m[f"{key}_success_rate"], m[f"{key}_return_mean"], m[f"{key}_collision_rate"]]
        for key, label in (
            ("noise", "observation noise"),
            ("delay", "action delay"),
            ("dropout", "sensor dropout"),
            ("unseen", "unseen layouts"),
        )
        if f"{key}_success_rate" in m
    ]
    if rows:
        parts += [
            "## Robustness and generalisation",
            "",
            "The trained agent on the same number of episodes with one perturbation at a time "
            "(settings in `[evaluator]`: `noise_sigma`, `action_delay`, `dropout`), and on layouts drawn from "
            "ids never used in training:",
            "",
            _table(
                ["condition", "success", "return", "collisions"],
                [["none", m["success_rate"], m["return_mean"], m["collision_rate"]], *rows],
            ),
            "",
        ]
    stages = sorted({int(k[5 : k.index("_")]) for k in m if k.startswith("stage") and k[5 : k.index("_")].isdigit()})
    if stages:
        parts += [
            "## Per curriculum stage",
            "",
            _table(
                ["stage", "success", "return", "collisions"],
                [
                    [k, m[f"stage{k}_success_rate"], m[f"stage{k}_return_mean"], m[f"stage{k}_collision_rate"]]
                    for k in stages
                ],
            ),
            "",
        ]
    if (run / "plots" / "eval_episode.gif").exists():
        parts += ["## One evaluation episode", "", "![evaluation episode](plots/eval_episode.gif)", ""]
    parts += [
        "## Files",
        "",
        "`metrics.json` (every figure), `training_stats.json` (the curve), `checkpoints/best.pt` and `last.pt`.",
        "",
    ]
    return "\n".join(parts)
