"""Report figures: a maze with each model's value map and rolled-out path (matplotlib, imported on use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlcore_diffplan_vins.mazes import COST_TOL, MazeSet

__all__ = ["plot_maze_predictions"]


def plot_maze_predictions(path: Path, maze: MazeSet, models: dict[str, Any], *, device: Any = "cpu") -> Path:
    """Draw one maze (``len(maze) == 1``): per model, its value map with the path from the farthest start cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlcore.io import atomic_write
    from mlcore_diffplan_vins.evaluation import policy_of
    from mlcore_diffplan_vins.metrics import rollout_paths

    walls, dist = maze.walls[0], maze.distances[0]
    goal = (int(maze.goals[0, 0]), int(maze.goals[0, 1]))
    finite = np.where(np.isfinite(dist), dist, -1)
    far = np.unravel_index(finite.argmax(), finite.shape)
    start = (int(far[0]), int(far[1]))
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(3.2 * (len(models) + 1), 3.4), squeeze=False)
    ax = axes[0, 0]
    ax.imshow(np.where(walls == 1, np.nan, finite), cmap="viridis_r")
    ax.set_title(f"optimal distance (start: {dist[start]:.0f})", fontsize=9)
    for col, (name, model) in enumerate(models.items(), start=1):
        actions, values, _ = policy_of(model, maze, device=device)
        ax = axes[0, col]
        shown = values[0] if values is not None else np.zeros_like(finite)
        ax.imshow(np.where(walls == 1, np.nan, shown), cmap="magma")
        cells = rollout_paths(walls, actions[0], start, goal, maze.num_actions)
        steps = np.diff(np.array(cells), axis=0)
        cost = float(np.hypot(steps[:, 0], steps[:, 1]).sum()) if len(cells) > 1 else 0.0
        reached = cells[-1] == goal
        color = "lime" if reached and cost <= dist[start] + COST_TOL else ("orange" if reached else "red")
        ys, xs = zip(*cells)
        ax.plot(xs, ys, color=color, linewidth=2)
        verdict = "optimal" if color == "lime" else ("reaches goal" if reached else "fails")
        ax.set_title(f"{name}: value map, path {verdict}", fontsize=9)
    for ax in axes[0]:
        ax.imshow(np.where(walls == 1, 1.0, np.nan), cmap="Greys", vmin=0, vmax=1)
        ax.plot(goal[1], goal[0], marker="*", color="gold", markersize=12)
        ax.plot(start[1], start[0], marker="o", color="cyan", markersize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90))
    plt.close(fig)
    return path
