"""Report figures of the graph pipelines (matplotlib, imported on use)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlcore_diffplan_vins.graphs.build import GraphSet

__all__ = ["plot_graph_predictions", "rollout_path"]


def rollout_path(graphs: GraphSet, choices: np.ndarray, start: int) -> list[int]:
    """The global nodes visited from ``start`` following ``choices`` (blocked moves stop the path)."""
    goal = int(graphs.global_goals()[graphs.graph_of[start]])
    path = [start]
    node = start
    for _ in range(int(np.diff(graphs.node_ptr).max())):
        if node == goal:
            break
        nxt = int(choices[node])
        if nxt < 0 or graphs.obstacle[nxt] or nxt == node:
            break
        node = nxt
        path.append(node)
    return path


def plot_graph_predictions(
    path: Path, graph: GraphSet, policies: dict[str, tuple[np.ndarray, np.ndarray | None]]
) -> Path:
    """Draw one graph (``len(graph) == 1``): per policy, its node values and the path from the farthest start.

    ``policies`` maps a name to ``(choices [N], values [N] or None)``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlcore.io import atomic_write

    dist = graph.distances
    finite = np.where(np.isfinite(dist), dist, -1.0)
    start = int(finite.argmax())
    goal = int(graph.global_goals()[0])
    free = graph.obstacle == 0
    fig, axes = plt.subplots(1, len(policies) + 1, figsize=(3.2 * (len(policies) + 1), 3.4), squeeze=False)
    panels: list[tuple[str, np.ndarray, list[int] | None, str]] = [
        (f"optimal distance (start: {dist[start]:.1f})", np.where(free, finite, np.nan), None, "viridis_r")
    ]
    for name, (choices, values) in policies.items():
        route = rollout_path(graph, choices, start)
        reached = route[-1] == goal
        cost = float(np.linalg.norm(np.diff(graph.pos[route], axis=0), axis=1).sum()) if len(route) > 1 else 0.0
        verdict = "optimal" if reached and cost <= dist[start] + 1e-4 else ("reaches goal" if reached else "fails")
        shown = values if values is not None else np.zeros(len(dist))
        panels.append((f"{name}: path {verdict}", np.where(free, shown, np.nan), route, "magma"))
    src = np.repeat(np.arange(len(graph.pos)), graph.num_slots)
    dst = graph.nbr.reshape(-1)
    ok = (dst >= 0) & free[src] & free[np.maximum(dst, 0)]
    for ax, (title, colours, shown_route, cmap) in zip(axes[0], panels):
        for a, b in zip(src[ok], dst[ok]):
            ax.plot(*graph.pos[[a, b]].T, color="0.85", linewidth=0.5, zorder=0)
        ax.scatter(*graph.pos[free].T, c=colours[free], cmap=cmap, s=14, zorder=1)
        ax.scatter(*graph.pos[~free].T, color="black", s=14, marker="s", zorder=1)
        if shown_route is not None:
            ax.plot(*graph.pos[shown_route].T, color="lime", linewidth=2, zorder=2)
        ax.plot(*graph.pos[goal], marker="*", color="gold", markersize=14, zorder=3)
        ax.plot(*graph.pos[start], marker="o", color="cyan", markersize=7, zorder=3)
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90))
    plt.close(fig)
    return path
