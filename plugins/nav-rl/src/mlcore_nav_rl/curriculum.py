"""Curriculum learning: stages of increasing difficulty with automatic progression.

:class:`Curriculum` keeps a rolling window of the last ``window`` training episodes of the current
stage (return, success, collision) and moves to the next stage once the window is full and every
threshold of the stage holds (success rate >=, mean return >=, collision rate <=). A stage can be
forced by hand (``force_stage``; automatic progression then stops), stages can be defined in the
config, each stage has its own exploration schedule (``start * decay^episodes``, floored at
``end``; DQN's epsilon / TD3's action-noise sigma), transitions are recorded, and the whole state
is written to ``curriculum_progress.json`` and restored from it (resume).

:class:`CurriculumCallback` drives it from SB3's ``learn`` loop and changes the environments
through ``VecEnv.env_method("set_stage", ...)``.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import attrs

from mlcore.config import in_range, positive
from mlcore.io import atomic_write_json, read_json

log = logging.getLogger(__name__)


@attrs.define
class StageSpec:
    """One curriculum stage: environment settings, progression thresholds, exploration schedule."""

    name: str = "stage"
    n_static: int = attrs.field(default=3, validator=in_range(0, 32))
    n_moving: int = attrs.field(default=0, validator=in_range(0, 32))
    n_goals: int = attrs.field(default=1, validator=in_range(1, 16))
    max_steps: int = attrs.field(default=200, validator=positive)
    success_rate: float = attrs.field(default=0.7, validator=in_range(0.0, 1.0))
    #: mean episode return threshold; ``None`` = not checked
    mean_reward: float | None = None
    collision_rate: float = attrs.field(default=0.3, validator=in_range(0.0, 1.0))
    exploration_start: float = attrs.field(default=1.0, validator=in_range(0.0))
    exploration_end: float = attrs.field(default=0.05, validator=in_range(0.0))
    exploration_decay: float = attrs.field(default=0.995, validator=in_range(0.0, 1.0))

    def env_fields(self) -> dict[str, Any]:
        """The fields passed to ``NavEnv.set_stage``."""
        return {
            "n_static": self.n_static,
            "n_moving": self.n_moving,
            "n_goals": self.n_goals,
            "max_steps": self.max_steps,
        }


def default_stages() -> list[StageSpec]:
    """The four stages of the original plan (thresholds adapted to this environment's reward scale)."""
    return [
        StageSpec("basic navigation", 3, 0, 1, 200, 0.7, 5.0, 0.3, 1.0, 0.3, 0.995),
        StageSpec("moving obstacles", 0, 5, 1, 200, 0.7, 5.0, 0.2, 0.5, 0.1, 0.995),
        StageSpec("multi-goal", 0, 5, 3, 300, 0.7, 15.0, 0.2, 0.3, 0.05, 0.997),
        StageSpec("full challenge", 0, 7, 4, 400, 0.6, 20.0, 0.25, 0.2, 0.01, 0.998),
    ]


@attrs.define
class CurriculumConfig:
    """Curriculum settings: stages (default: the four of the plan), window, forcing."""

    stages: list[StageSpec] = attrs.field(factory=default_stages)
    window: int = attrs.field(default=50, validator=positive)
    #: -1 = automatic progression; k >= 0 = stay on stage k
    force_stage: int = attrs.field(default=-1, validator=in_range(-1))
    start_stage: int = attrs.field(default=0, validator=in_range(0))

    def __attrs_post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages must not be empty")
        for k in (self.force_stage, self.start_stage):
            if k >= len(self.stages):
                raise ValueError(f"stage index {k} out of range (there are {len(self.stages)} stages)")


class Curriculum:
    """Stage bookkeeping; feed it finished episodes with :meth:`record_episode`.

    Example::

        cur = Curriculum(CurriculumConfig(window=20))
        changed = cur.record_episode(reward=12.0, success=True, collision=False, timesteps=5000)
        env.env_method("set_stage", **cur.stage.env_fields())
    """

    def __init__(self, config: CurriculumConfig | None = None) -> None:
        self.config = config or CurriculumConfig()
        self.stage_index = self.config.force_stage if self.config.force_stage >= 0 else self.config.start_stage
        self.episodes_total = 0
        self.episodes_in_stage = 0
        self.history: list[dict[str, Any]] = []
        self._window: deque[tuple[float, bool, bool]] = deque(maxlen=self.config.window)

    @property
    def stage(self) -> StageSpec:
        """The current stage."""
        return self.config.stages[self.stage_index]

    @property
    def is_last_stage(self) -> bool:
        """Whether the current stage is the final one."""
        return self.stage_index == len(self.config.stages) - 1

    def window_stats(self) -> dict[str, float]:
        """Success rate, mean return and collision rate over the rolling window."""
        n = len(self._window)
        if n == 0:
            return {"episodes": 0.0, "success_rate": 0.0, "mean_reward": 0.0, "collision_rate": 0.0}
        return {
            "episodes": float(n),
            "success_rate": sum(s for _, s, _ in self._window) / n,
            "mean_reward": sum(r for r, _, _ in self._window) / n,
            "collision_rate": sum(c for _, _, c in self._window) / n,
        }

    def criteria_met(self) -> bool:
        """Whether the window is full and every threshold of the current stage holds."""
        if len(self._window) < self.config.window:
            return False
        st, s = self.stage, self.window_stats()
        ok = s["success_rate"] >= st.success_rate and s["collision_rate"] <= st.collision_rate
        if st.mean_reward is not None:
            ok = ok and s["mean_reward"] >= st.mean_reward
        return ok

    def exploration(self) -> float:
        """The current stage's exploration value: ``max(end, start * decay^episodes_in_stage)``."""
        st = self.stage
        return max(st.exploration_end, st.exploration_start * st.exploration_decay**self.episodes_in_stage)

    def record_episode(self, reward: float, success: bool, collision: bool, timesteps: int = 0) -> bool:
        """Add one finished episode; returns ``True`` when this advanced the stage."""
        self._window.append((float(reward), bool(success), bool(collision)))
        self.episodes_total += 1
        self.episodes_in_stage += 1
        if self.config.force_stage >= 0 or self.is_last_stage or not self.criteria_met():
            return False
        self._move_to(self.stage_index + 1, reason="criteria met", timesteps=timesteps)
        return True

    def force_stage(self, index: int, timesteps: int = 0) -> None:
        """Jump to stage ``index`` and stop automatic progression."""
        if not 0 <= index < len(self.config.stages):
            raise ValueError(f"stage index {index} out of range (there are {len(self.config.stages)} stages)")
        self.config = attrs.evolve(self.config, force_stage=index)
        self._move_to(index, reason="forced", timesteps=timesteps)

    def _move_to(self, index: int, *, reason: str, timesteps: int) -> None:
        self.history.append(
            {
                "from": self.stage_index,
                "to": index,
                "from_name": self.stage.name,
                "to_name": self.config.stages[index].name,
                "reason": reason,
                "episode": self.episodes_total,
                "episodes_in_stage": self.episodes_in_stage,
                "timesteps": int(timesteps),
                **self.window_stats(),
            }
        )
        log.info("curriculum: stage %d -> %d (%s) at episode %d", self.stage_index, index, reason, self.episodes_total)
        self.stage_index = index
        self.episodes_in_stage = 0
        self._window.clear()

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (plain JSON data)."""
        from mlcore.config import unstructure

        return {
            "current_stage": self.stage_index,
            "stage_name": self.stage.name,
            "completed": self.is_last_stage,
            "episodes_total": self.episodes_total,
            "episodes_in_stage": self.episodes_in_stage,
            "exploration": self.exploration(),
            "window": [list(w) for w in self._window],
            "window_stats": self.window_stats(),
            "history": self.history,
            "config": unstructure(self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the stage definitions of the current config are kept)."""
        self.stage_index = min(int(state["current_stage"]), len(self.config.stages) - 1)
        self.episodes_total = int(state["episodes_total"])
        self.episodes_in_stage = int(state["episodes_in_stage"])
        self.history = list(state.get("history", []))
        self._window.clear()
        for r, s, c in state.get("window", []):
            self._window.append((float(r), bool(s), bool(c)))

    def save(self, path: str | Path) -> Path:
        """Write ``curriculum_progress.json`` atomically."""
        return atomic_write_json(path, self.state_dict())

    @classmethod
    def load(cls, path: str | Path, config: CurriculumConfig | None = None) -> Curriculum:
        """A curriculum resumed from a progress file."""
        cur = cls(config)
        cur.load_state_dict(read_json(path))
        return cur


def make_curriculum_callback(curriculum: Curriculum, progress_path: str | Path | None = None) -> Any:
    """An SB3 callback driving ``curriculum`` (import of SB3 deferred to here)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class CurriculumCallback(BaseCallback):
        """Feeds finished episodes to the curriculum; switches the envs' stage via ``env_method``."""

        def __init__(self) -> None:
            super().__init__()
            self.curriculum = curriculum
            self.progress_path = Path(progress_path) if progress_path else None

        def _apply(self) -> None:
            self.training_env.env_method("set_stage", **self.curriculum.stage.env_fields())
            self._apply_exploration()

        def _apply_exploration(self) -> None:
            value = self.curriculum.exploration()
            model: Any = self.model
            if hasattr(model, "exploration_schedule"):  # DQN: epsilon
                model.exploration_schedule = lambda _progress, v=value: v
                model.exploration_rate = value
            noise = getattr(model, "action_noise", None)
            if noise is not None and hasattr(noise, "_sigma"):  # TD3: Gaussian action-noise sigma
                noise._sigma = noise._sigma * 0 + value

        def _on_training_start(self) -> None:
            current = self.training_env.env_method("get_stage", indices=[0])[0]
            wanted = self.curriculum.stage.env_fields()
            self._apply()
            if any(current[k] != v for k, v in wanted.items()):
                self.model._last_obs = self.training_env.reset()  # type: ignore[assignment]  # start the resumed stage right away

        def _on_step(self) -> bool:
            dones = self.locals.get("dones")
            infos = self.locals.get("infos", [])
            if dones is None:
                return True
            changed = False
            for done, info in zip(dones, infos):
                if not done or "episode" not in info:
                    continue
                changed |= self.curriculum.record_episode(
                    info["episode"]["r"],
                    bool(info.get("is_success", False)),
                    bool(info.get("collision", False)),
                    timesteps=self.num_timesteps,
                )
            if changed:
                self._apply()
                if self.progress_path:
                    self.curriculum.save(self.progress_path)
            elif dones.any():
                self._apply_exploration()
            self.logger.record("curriculum/stage", self.curriculum.stage_index)
            return True

        def _on_training_end(self) -> None:
            if self.progress_path:
                self.curriculum.save(self.progress_path)

    return CurriculumCallback()
