"""The ``nav`` dataset component: a :class:`~mlcore.data.DataModule` that *describes the environment*.

For reinforcement learning the "data" is the environment: the trainer gets its environments from
:meth:`NavData.make_env` / :meth:`NavData.make_vec_env`. To honour the core's dataset contract
(``train_set`` items are ``(inputs, targets)``) the module also holds a small demonstration set:
observations and the actions of the scripted potential-field planner on seeded episodes, usable
for behaviour cloning (and by the conformance kit's forward/loss/training checks).
``mlcore data generate nav --out DIR`` writes it to ``DIR/nav_demos.npz`` plus the env config.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlcore.config import in_range, one_of, unstructure
from mlcore.data import DataModule
from mlcore.errors import DataError
from mlcore_nav_rl.envs.nav_env import NavEnvConfig

log = logging.getLogger(__name__)


@attrs.define
class NavDataConfig:
    """The environment (``[dataset.env]``), its observation kind, and the demonstration set."""

    env: NavEnvConfig = attrs.field(factory=NavEnvConfig)
    #: Dict observations for HER (``observation``/``achieved_goal``/``desired_goal``)
    goal_conditioned: bool = False
    demo_steps: int = attrs.field(default=512, validator=in_range(16))
    val_fraction: float = attrs.field(default=0.2, validator=in_range(0.0, 0.9))
    seed: int = 0
    #: load the demonstrations from this ``nav_demos.npz`` instead of generating them
    path: str = ""
    demo_policy: str = attrs.field(default="potential_field", validator=one_of("potential_field", "random"))


class _DemoSet:
    """Demonstrations as a torch-style dataset: items ``(obs, action)``; ``obs`` is a tensor or a dict of tensors."""

    def __init__(self, obs: dict[str, np.ndarray] | np.ndarray, actions: np.ndarray) -> None:
        import torch

        if isinstance(obs, dict):
            self.obs: Any = {k: torch.as_tensor(v) for k, v in obs.items()}
        else:
            self.obs = torch.as_tensor(obs)
        self.actions = torch.as_tensor(actions)

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        obs = {k: v[i] for k, v in self.obs.items()} if isinstance(self.obs, dict) else self.obs[i]
        return obs, self.actions[i]


class NavData(DataModule):
    """Navigation environment factory plus a planner-demonstration set.

    Example::

        data = NavData(NavDataConfig(env=NavEnvConfig(n_moving=3))).prepare()
        venv = data.make_vec_env(4, seed=0)
        obs, action = data.train_set()[0]
    """

    config: NavDataConfig

    def __init__(self, config: NavDataConfig | None = None) -> None:
        super().__init__(config or NavDataConfig())

    # ------------------------------------------------------------------ environments
    def env_config(self, **overrides: Any) -> NavEnvConfig:
        """The environment config, with ``overrides`` (e.g. ``action_type``) applied."""
        return attrs.evolve(self.config.env, **overrides) if overrides else self.config.env

    def make_env(
        self, *, render_mode: str | None = None, goal_conditioned: bool | None = None, **overrides: Any
    ) -> Any:
        """One gymnasium environment."""
        from mlcore_nav_rl.envs import make_env

        gc = self.config.goal_conditioned if goal_conditioned is None else goal_conditioned
        return make_env(self.env_config(**overrides), goal_conditioned=gc, render_mode=render_mode)

    def make_vec_env(self, n: int = 1, *, seed: int = 0, goal_conditioned: bool | None = None, **overrides: Any) -> Any:
        """An SB3 ``DummyVecEnv`` of ``n`` Monitor-wrapped, seeded environments."""
        from mlcore_nav_rl.envs import make_vec_env

        gc = self.config.goal_conditioned if goal_conditioned is None else goal_conditioned
        return make_vec_env(self.env_config(**overrides), n, goal_conditioned=gc, seed=seed)

    # ------------------------------------------------------------------ demonstrations
    def _collect(self) -> tuple[Any, np.ndarray]:
        from mlcore_nav_rl.evaluation.baselines import PotentialFieldPolicy, RandomPolicy

        env = self.make_env()
        policy: Any = (
            PotentialFieldPolicy(env)
            if self.config.demo_policy == "potential_field"
            else RandomPolicy(env.action_space, self.config.seed)
        )
        obs, _ = env.reset(seed=self.config.seed)
        observations, actions = [], []
        for _ in range(self.config.demo_steps):
            action, _ = policy.predict(obs)
            observations.append(obs)
            actions.append(action)
            obs, _, term, trunc, _ = env.step(action)
            if term or trunc:
                obs, _ = env.reset()
        if isinstance(observations[0], dict):
            stacked: Any = {k: np.stack([o[k] for o in observations]).astype(np.float32) for k in observations[0]}
        else:
            stacked = np.stack(observations).astype(np.float32)
        acts = np.asarray(actions)
        acts = acts.astype(np.int64) if self.config.env.action_type == "discrete" else acts.astype(np.float32)
        return stacked, acts

    def _load(self, path: Path) -> tuple[Any, np.ndarray]:
        if not path.is_file():
            raise DataError(
                f"demonstration file not found: {path} (create it with `mlcore data generate nav --out {path.parent}`)"
            )
        with np.load(path) as f:
            keys = set(f.files)
            if "actions" not in keys:
                raise DataError(f"{path}: not a nav demonstration file (no 'actions' array)")
            if {"observation", "achieved_goal", "desired_goal"} <= keys:
                obs: Any = {k: f[k] for k in ("observation", "achieved_goal", "desired_goal")}
            elif "obs" in keys:
                obs = f["obs"]
            else:
                raise DataError(f"{path}: no observations ('obs' or the goal-conditioned keys)")
            actions = f["actions"]
        n_obs = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
        if n_obs != len(actions):
            raise DataError(f"{path}: {n_obs} observations but {len(actions)} actions")
        arrays = list(obs.values()) if isinstance(obs, dict) else [obs]
        if any(not np.all(np.isfinite(a)) for a in arrays):
            raise DataError(f"{path}: observations contain NaN or inf")
        expected = self.make_env().observation_space
        shape = expected["observation"].shape if isinstance(obs, dict) else expected.shape
        got = (obs["observation"] if isinstance(obs, dict) else obs).shape[1:]
        if tuple(got) != tuple(shape):
            raise DataError(
                f"{path}: observations have shape {tuple(got)}, the configured env gives {tuple(shape)} (n_rays?)"
            )
        return obs, actions

    def setup(self) -> None:
        """Collect (or load) the demonstrations and split them."""
        obs, actions = self._load(Path(self.config.path)) if self.config.path else self._collect()
        full: Any = _DemoSet(obs, actions)  # a map-style dataset (torch's Dataset protocol)
        n_val = int(len(full) * self.config.val_fraction)
        if n_val > 0:
            self._train, self._val = self.split(full, [len(full) - n_val, n_val], seed=self.config.seed)
        else:
            self._train, self._val = full, None

    def train_set(self) -> Any:
        """Planner demonstrations (training split)."""
        return self._train

    def val_set(self) -> Any:
        """Planner demonstrations (validation split)."""
        return self._val

    def generate(self, out_dir: Path) -> list[Path]:
        """Write ``nav_demos.npz`` and ``nav_env.json`` under ``out_dir``."""
        from mlcore.io import atomic_write, atomic_write_json

        obs, actions = self._collect()
        arrays = dict(obs) if isinstance(obs, dict) else {"obs": obs}
        out_dir = Path(out_dir)
        path = atomic_write(out_dir / "nav_demos.npz", lambda fh: np.savez_compressed(fh, actions=actions, **arrays))
        cfg = atomic_write_json(out_dir / "nav_env.json", unstructure(self.config))
        return [path, cfg]

    def state_dict(self) -> dict[str, Any]:
        """The environment description (plain data), so a checkpoint names the env it was trained on."""
        return {"env": unstructure(self.config.env), "goal_conditioned": self.config.goal_conditioned}
