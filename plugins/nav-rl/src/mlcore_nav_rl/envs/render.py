"""Numpy rendering of :class:`~mlcore_nav_rl.envs.nav_env.NavEnv` frames and GIF writing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_BG = np.array([245, 245, 240], dtype=np.uint8)
_OBSTACLE = np.array([90, 90, 100], dtype=np.uint8)
_MOVING = np.array([200, 120, 60], dtype=np.uint8)
_GOAL = np.array([60, 170, 80], dtype=np.uint8)
_GOAL_DONE = np.array([180, 220, 180], dtype=np.uint8)
_ROBOT = np.array([40, 90, 200], dtype=np.uint8)
_RAY = np.array([230, 80, 80], dtype=np.uint8)


def _disc(
    img: np.ndarray, grid: tuple[np.ndarray, np.ndarray], centre: np.ndarray, radius: float, colour: np.ndarray
) -> None:
    yy, xx = grid
    mask = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2
    img[mask] = colour


def draw_frame(env: Any, size: int = 256) -> np.ndarray:
    """Draw the arena, goals, obstacles, robot and its range rays as an ``(size, size, 3)`` uint8 image."""
    cfg = env.config
    scale = size / cfg.arena_size
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = _BG
    coords = (np.arange(size) + 0.5) / scale
    grid = (coords[::-1, None], coords[None, :])  # y up
    for i, g in enumerate(env.goals):
        _disc(img, grid, g, cfg.goal_radius, _GOAL_DONE if i < env.goal_idx else _GOAL)
    for k, (c, r) in enumerate(zip(env.obs_pos, env.obs_rad)):
        _disc(img, grid, c, r, _MOVING if k >= cfg.n_static else _OBSTACLE)
    ang = env._ray_angles + env.heading
    ts = np.linspace(0.0, 1.0, 40)
    for a, rng in zip(ang, env._ranges):
        pts = env.pos[None] + ts[:, None] * rng * np.array([math.cos(a), math.sin(a)])[None]
        px = np.clip((pts[:, 0] * scale).astype(int), 0, size - 1)
        py = np.clip(size - 1 - (pts[:, 1] * scale).astype(int), 0, size - 1)
        img[py, px] = _RAY
    _disc(img, grid, env.pos, cfg.robot_radius, _ROBOT)
    nose = env.pos + cfg.robot_radius * np.array([math.cos(env.heading), math.sin(env.heading)])
    _disc(img, grid, nose, cfg.robot_radius * 0.35, np.array([255, 255, 255], dtype=np.uint8))
    return img


def write_gif(frames: Sequence[np.ndarray], path: str | Path, fps: int = 10) -> Path:
    """Write frames as an animated GIF (Pillow when installed, else matplotlib's writer)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError("write_gif: no frames")
    try:
        from PIL import Image

        images = [Image.fromarray(np.asarray(f)) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        return path
    except ImportError:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.animation import FuncAnimation, PillowWriter

        fig, ax = plt.subplots()
        ax.axis("off")
        im = ax.imshow(frames[0])

        def show(i: int) -> list[Any]:
            im.set_data(frames[i])
            return [im]

        anim = FuncAnimation(fig, show, frames=len(frames))
        anim.save(str(path), writer=PillowWriter(fps=fps))
        plt.close(fig)
        return path
