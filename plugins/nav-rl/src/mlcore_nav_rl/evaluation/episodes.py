"""Seeded evaluation episodes and their summary metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Metrics of :func:`summarize` (always present).
EPISODE_METRICS = (
    "success_rate",
    "return_mean",
    "return_std",
    "collision_rate",
    "path_efficiency",
    "spl",
    "episode_length",
    "goals_reached",
)


def run_episodes(
    policy: Any,
    env: Any,
    n_episodes: int,
    *,
    seed: int = 0,
    deterministic: bool = True,
    layout_ids: list[int] | None = None,
    record: int = 0,
    gif_path: str | Path | None = None,
) -> list[dict[str, float]]:
    """Run ``n_episodes`` with ``policy.predict``; episode ``i`` is reset with seed ``seed + i``.

    Args:
        policy: anything with SB3's ``predict(obs, deterministic=...)``.
        env: a gymnasium env (possibly wrapped).
        layout_ids: optional fixed layout per episode (``reset(options={"layout_id": ...})``), e.g. unseen layouts.
        record: render the first ``record`` episodes (``render_mode="rgb_array"`` needed) into ``gif_path``.

    Returns:
        One record per episode: ``return``, ``length``, ``success``, ``collision``, ``goals_reached``,
        ``path_length``, ``optimal_length``.
    """
    out: list[dict[str, float]] = []
    frames: list[np.ndarray] = []
    for i in range(n_episodes):
        options = {"layout_id": layout_ids[i % len(layout_ids)]} if layout_ids else None
        obs, info = env.reset(seed=seed + i, options=options)
        total, length, done = 0.0, 0, False
        while not done:
            if i < record:
                frames.append(env.render())
            action, _ = policy.predict(obs, deterministic=deterministic)
            obs, reward, term, trunc, info = env.step(action)
            total += float(reward)
            length += 1
            done = term or trunc
        out.append(
            {
                "return": total,
                "length": float(length),
                "success": float(bool(info.get("is_success", False))),
                "collision": float(bool(info.get("collision", False))),
                "goals_reached": float(info.get("goals_reached", 0)),
                "path_length": float(info.get("path_length", 0.0)),
                "optimal_length": float(info.get("optimal_length", 0.0)),
            }
        )
    if frames and gif_path is not None:
        from mlcore_nav_rl.envs.render import write_gif

        write_gif(frames, gif_path)
    return out


def summarize(records: list[dict[str, float]]) -> dict[str, float]:
    """Success rate, return mean/std, collision rate, path efficiency (successful episodes), SPL, length."""
    if not records:
        raise ValueError("summarize: no episodes")
    ret = np.array([r["return"] for r in records])
    succ = np.array([r["success"] for r in records])
    opt = np.array([r["optimal_length"] for r in records])
    path = np.array([r["path_length"] for r in records])
    eff = np.where(path > 0, opt / np.maximum(path, opt), 0.0)
    return {
        "success_rate": float(succ.mean()),
        "return_mean": float(ret.mean()),
        "return_std": float(ret.std()),
        "collision_rate": float(np.mean([r["collision"] for r in records])),
        "path_efficiency": float(eff[succ > 0].mean()) if succ.any() else 0.0,
        "spl": float((succ * eff).mean()),
        "episode_length": float(np.mean([r["length"] for r in records])),
        "goals_reached": float(np.mean([r["goals_reached"] for r in records])),
    }


def evaluate_policy(
    policy: Any, make_env: Callable[[], Any], n_episodes: int, *, seed: int = 0, **kw: Any
) -> dict[str, float]:
    """``summarize(run_episodes(...))`` on a fresh env from ``make_env``."""
    env = make_env()
    try:
        return summarize(run_episodes(policy, env, n_episodes, seed=seed, **kw))
    finally:
        env.close()
