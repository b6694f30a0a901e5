"""The ``sb3`` trainer: SB3's ``learn`` loop writing the core's run directory.

``SB3Trainer.fit(model, data, loss, *, run_dir, meta)`` builds the vectorised environments from
the ``nav`` data module, the algorithm from the :class:`~mlcore_nav_rl.agent.NavAgent`, and runs
``learn`` with a callback that, every ``eval_freq`` environment steps, evaluates the current policy
on seeded episodes and writes:

- ``training_stats.json``: one record per evaluation point (timesteps, mean/std return, success
  and collision rates, path efficiency, episode length, curriculum stage, seconds);
- ``checkpoints/last.pt`` (+ ``checkpoints/last_replay_buffer.pkl``) and ``checkpoints/best.pt``
  (best by ``monitor``) in the core's format: the policy weights as the model state, the whole
  SB3 algorithm as its zip bytes in a ``uint8`` tensor (``sb3_zip``), history and curriculum state,
  all loadable with ``torch.load(weights_only=True)``;
- ``training_curves.png``, ``curriculum_progress.json``.

Scalars go to the core's trackers named in ``trackers`` (default ``["tensorboard"]``, i.e.
``<run_dir>/tensorboard/``), built through the registry like the core trainer does, with the
environment step count as ``step``: every evaluation point (``eval/success_rate``,
``eval/return_mean``, ``eval/collision_rate``, ``eval/episode_length``, ... and ``eval/timesteps``)
and, whenever SB3 dumps its logger, its ``train/*`` (losses, entropy coefficient, learning rate),
``rollout/*`` and ``curriculum/*`` values. SB3's own TensorBoard writer is off by default
(``sb3_tensorboard = true`` adds it under ``tensorboard/sb3``, a separate folder, so no two event
streams share one).

Re-running into the same ``run_dir`` resumes from ``last.pt`` with its replay buffer. The ``loss``
argument of the core's trainer contract is unused (the algorithm owns its losses).

While `mlcore tune` runs a trial, every evaluation record goes to its pruner
(:func:`mlcore.tuning.reporting.report`, a no-op otherwise).
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from mlcore.config import in_range, one_of, positive
from mlcore.errors import CheckpointError, ConfigError, RunInterrupted
from mlcore.tuning.reporting import report

log = logging.getLogger(__name__)


@attrs.define
class SB3TrainerConfig:
    """Settings of the ``sb3`` trainer."""

    total_timesteps: int = attrs.field(default=50_000, validator=positive)
    n_envs: int = attrs.field(default=1, validator=in_range(1, 256))
    eval_freq: int = attrs.field(default=5_000, validator=positive)
    eval_episodes: int = attrs.field(default=20, validator=positive)
    #: which curriculum stage the learning curve is evaluated on: the ``current`` one or the ``final``
    #: one. ``best.pt`` is always selected on the final stage: with ``current`` and a curriculum that
    #: has not reached it yet, each evaluation point also runs ``eval_episodes`` on the final stage.
    eval_stage: str = attrs.field(default="current", validator=one_of("current", "final"))
    monitor: str = attrs.field(default="success_rate", validator=one_of("success_rate", "return_mean", "spl"))
    deterministic_eval: bool = True
    progress: bool = True
    #: registered tracker names (kind ``tracker``) that receive the evaluation and training scalars
    trackers: list[str] = attrs.field(factory=lambda: ["tensorboard"])
    #: also write SB3's own logger (``train/*``, ``rollout/*``, ``time/*``) as TensorBoard events
    #: under ``tensorboard/sb3`` (a separate folder from the ``tensorboard`` tracker's)
    sb3_tensorboard: bool = False
    resume: bool = True
    save_replay_buffer: bool = True
    plot: bool = True
    max_time_minutes: float = attrs.field(default=0.0, validator=in_range(0.0))
    #: stop once ``monitor`` (on the final stage) is at least ``stop_at`` at ``stop_evals`` consecutive
    #: evaluation points (``stopped_reason = "early_stopping"``); 0 = train for ``total_timesteps``
    stop_at: float = attrs.field(default=0.0, validator=in_range(0.0))
    stop_evals: int = attrs.field(default=2, validator=positive)
    #: torch intra-op threads during training; 0 = follow the core's setting (``run.threads``), which
    #: the core applies before the pipeline runs. Only a value set here makes the trainer change it.
    torch_threads: int = attrs.field(default=0, validator=in_range(0))


#: prefixes of SB3 logger keys forwarded to the trackers
FORWARDED_PREFIXES = ("train/", "rollout/", "curriculum/")


def resolve_trackers(names: Sequence[str]) -> list[Any]:
    """Build the named trackers through the registry, as the core trainer does (one-line ``ConfigError``)."""
    from mlcore.registry import build_named
    from mlcore.training.tracking import Tracker

    return build_named("tracker", names, Tracker, where="trainer.trackers")


def _finite_scalars(values: dict[str, Any], prefixes: tuple[str, ...] | None = None) -> dict[str, float]:
    import math
    import numbers

    out = {}
    for key, value in values.items():
        if prefixes is not None and not key.startswith(prefixes):
            continue
        if isinstance(value, bool):
            continue
        if not isinstance(value, numbers.Real):
            try:  # numpy / torch scalars
                value = value.item()
            except (AttributeError, ValueError):
                continue
            if not isinstance(value, numbers.Real):
                continue
        if math.isfinite(float(value)):
            out[key] = float(value)
    return out


def _tracker_writer(trackers: Sequence[Any]) -> Any:
    """An SB3 ``KVWriter`` forwarding the logger's ``train/*``, ``rollout/*``, ``curriculum/*`` scalars."""
    from stable_baselines3.common.logger import KVWriter

    class TrackerWriter(KVWriter):
        def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
            values = _finite_scalars(key_values, FORWARDED_PREFIXES)
            if values:
                for tracker in trackers:
                    tracker.log_scalars(values, int(step))

        def close(self) -> None:
            pass  # the trainer closes the trackers

    return TrackerWriter()


def _zip_bytes(algo: Any) -> Any:
    import torch

    buf = io.BytesIO()
    algo.save(buf)
    return torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)


def load_algorithm(ckpt: dict[str, Any], *, env: Any = None, device: Any = "cpu") -> Any:
    """The full SB3 algorithm stored in a checkpoint's ``sb3_zip`` entry."""
    from mlcore_nav_rl.agent import _algo_classes

    if "sb3_zip" not in ckpt:
        raise CheckpointError(f"checkpoint {ckpt.get('path', '?')} holds no SB3 algorithm (no 'sb3_zip' entry)")
    model_cfg = ckpt["meta"]["components"]["model"]
    name = model_cfg["name"]
    per = bool((model_cfg.get("config") or {}).get("per", False))
    cls = _algo_classes(name, per)
    return cls.load(io.BytesIO(ckpt["sb3_zip"].numpy().tobytes()), env=env, device=device)


class SB3Trainer:
    """Trains a :class:`~mlcore_nav_rl.agent.NavAgent` with stable-baselines3 into an mlcore run directory.

    Example::

        trainer = SB3Trainer(SB3TrainerConfig(total_timesteps=20_000), seed=0)
        result = trainer.fit(agent, data, None, run_dir="runs/nav", meta=meta)
    """

    def __init__(
        self,
        config: SB3TrainerConfig | None = None,
        *,
        device: Any = "auto",
        seed: int = 0,
        callbacks: Sequence[Any] = (),
        progress: bool | None = None,
    ) -> None:
        from mlcore.devices import resolve_device

        self.config = config or SB3TrainerConfig()
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.seed = int(seed)
        self.callbacks = list(callbacks)
        self.progress = self.config.progress if progress is None else bool(progress and self.config.progress)

    # ------------------------------------------------------------------ helpers
    def _check(self, model: Any, data: Any) -> None:
        if not hasattr(model, "build_algorithm"):
            raise ConfigError(f"trainer 'sb3' trains nav-rl agents (sac, td3, dqn), not {type(model).__name__}")
        if not hasattr(data, "make_vec_env"):
            raise ConfigError(f"trainer 'sb3' needs an environment dataset such as 'nav', not {type(data).__name__}")
        if model.config.n_rays != data.config.env.n_rays:
            raise ConfigError(
                f"model.n_rays={model.config.n_rays} does not match dataset.env.n_rays={data.config.env.n_rays}"
            )

    def target_reached(self, history: Sequence[dict[str, Any]]) -> bool:
        """Whether the last ``stop_evals`` evaluation points all reached ``stop_at`` (never when it is 0).

        The figure is the one ``best.pt`` is selected on: ``final_stage_<monitor>`` while a curriculum
        is below its final stage, else ``<monitor>``.
        """
        cfg = self.config
        if cfg.stop_at <= 0 or len(history) < cfg.stop_evals:
            return False
        key = f"final_stage_{cfg.monitor}"
        return all(float(h.get(key, h[cfg.monitor])) >= cfg.stop_at for h in history[-cfg.stop_evals :])

    def _stage_fields(self, curriculum: Any, which: str) -> dict[str, Any]:
        if curriculum is None:
            return {}
        stage = curriculum.config.stages[-1] if which == "final" else curriculum.stage
        return stage.env_fields()

    def fit(
        self, model: Any, data: Any, loss: Any = None, *, run_dir: str | Path, meta: dict[str, Any] | None = None
    ) -> Any:
        """Train; returns an :class:`mlcore.training.FitResult` (``epoch`` = evaluation point)."""
        import torch
        from stable_baselines3.common.callbacks import BaseCallback, CallbackList

        from mlcore.training import FitResult
        from mlcore.training.checkpoint import load_checkpoint, save_checkpoint
        from mlcore_nav_rl.curriculum import Curriculum, make_curriculum_callback
        from mlcore_nav_rl.evaluation.episodes import run_episodes, summarize

        cfg = self.config
        self._check(model, data)
        tracker_objs = resolve_trackers(cfg.trackers)
        data.prepare()
        run_dir = Path(run_dir)
        ckpt_dir = run_dir / "checkpoints"
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
        rb_path = ckpt_dir / "last_replay_buffer.pkl"
        meta = dict(meta or {})
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        env_kw = {"goal_conditioned": model.goal_conditioned, "action_type": model.action_type}
        curriculum = Curriculum(model.config.curriculum_config) if model.config.curriculum else None

        history: list[dict[str, Any]] = []
        best_metric, best_epoch = float("-inf"), 0
        resumed = None
        if cfg.resume and last_path.exists():
            resumed = load_checkpoint(last_path)
            history = list(resumed.get("history", []))
            best_metric = float(resumed.get("best_metric", float("-inf")))
            best_epoch = int(resumed.get("best_epoch", 0))
            if curriculum is not None and resumed.get("curriculum"):
                curriculum.load_state_dict(resumed["curriculum"])
        venv = data.make_vec_env(cfg.n_envs, seed=self.seed, **env_kw, **self._stage_fields(curriculum, "current"))
        if resumed is not None:
            algo = load_algorithm(resumed, env=venv, device=self.device)
            if rb_path.exists():
                algo.load_replay_buffer(str(rb_path))  # re-attaches the env of a HerReplayBuffer
            log.info("resumed from %s at %d timesteps", last_path, algo.num_timesteps)
        else:
            algo = model.build_algorithm(venv, seed=self.seed, device=self.device)
        from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

        from mlcore.config import unstructure

        trackers: list[Any] = []
        try:
            tracker_config = {
                "trainer": unstructure(cfg),
                "seed": self.seed,
                "device": str(self.device),
                "meta": {k: v for k, v in meta.items() if k != "data_state"},
            }
            for tracker in tracker_objs:
                tracker.start(run_dir, tracker_config)
                trackers.append(tracker)
        except BaseException:
            for tracker in trackers:
                tracker.close()
            venv.close()
            raise
        formats: list[Any] = [_tracker_writer(trackers)] if trackers else []
        if cfg.sb3_tensorboard:
            formats.append(TensorBoardOutputFormat(str(run_dir / "tensorboard" / "sb3")))
        algo.set_logger(Logger(folder=None, output_formats=formats))

        trainer = self
        t_start = time.time()
        train_seconds0 = float(resumed.get("train_seconds", 0.0)) if resumed is not None else 0.0
        deadline = t_start + cfg.max_time_minutes * 60 if cfg.max_time_minutes > 0 else None
        # "running" until learn() returns: a run killed with -9 never claims to have completed
        state: dict[str, Any] = {"stopped": "running", "last_eval": int(history[-1]["timesteps"]) if history else 0}

        def save(path: Path, *, with_buffer: bool) -> None:
            model.adopt(algo)
            save_checkpoint(
                path,
                model=model,
                meta=meta,
                sb3_zip=_zip_bytes(algo),
                timesteps=int(algo.num_timesteps),
                history=history,
                best_metric=best_metric,
                best_epoch=best_epoch,
                train_seconds=train_seconds0 + time.time() - t_start,
                curriculum=curriculum.state_dict() if curriculum is not None else {},
            )
            if with_buffer and cfg.save_replay_buffer and algo.replay_buffer is not None:
                tmp = rb_path.with_name(rb_path.name + ".tmp")
                algo.save_replay_buffer(str(tmp))
                os.replace(tmp, rb_path)

        def episodes_on(which: str) -> dict[str, float]:
            env = data.make_env(**env_kw, **trainer._stage_fields(curriculum, which))
            records = run_episodes(
                algo, env, cfg.eval_episodes, seed=10_000 + trainer.seed, deterministic=cfg.deterministic_eval
            )
            return summarize(records)

        def evaluate() -> None:
            nonlocal best_metric, best_epoch
            metrics = episodes_on(cfg.eval_stage)
            # best.pt is chosen on the final stage, the one the final evaluation measures
            on_final_stage = curriculum is None or cfg.eval_stage == "final" or curriculum.is_last_stage
            selection = metrics if on_final_stage else episodes_on("final")
            rec: dict[str, Any] = {
                "epoch": len(history) + 1,
                "timesteps": int(algo.num_timesteps),
                **metrics,
                "seconds": round(train_seconds0 + time.time() - t_start, 3),
            }
            if curriculum is not None:
                rec["stage"] = curriculum.stage_index
                rec[f"final_stage_{cfg.monitor}"] = selection[cfg.monitor]
            history.append(rec)
            report(rec, rec["epoch"])  # to `mlcore tune`'s pruner when a search runs this trial (else a no-op)
            scalars = _finite_scalars({f"eval/{k}": v for k, v in metrics.items()})
            scalars["eval/timesteps"] = float(rec["timesteps"])
            if curriculum is not None:
                scalars["eval/stage"] = float(curriculum.stage_index)
            for tracker in trackers:
                tracker.log_scalars(scalars, rec["timesteps"])
            improved = selection[cfg.monitor] > best_metric
            if improved:
                best_metric, best_epoch = float(selection[cfg.monitor]), rec["epoch"]
            save(last_path, with_buffer=True)
            if improved or not best_path.exists():
                save(best_path, with_buffer=False)
            trainer._write_stats(
                run_dir, history, best_metric, best_epoch, state["stopped"], train_seconds0 + time.time() - t_start
            )
            state["last_eval"] = int(algo.num_timesteps)

        class RunDirCallback(BaseCallback):
            """Periodic evaluation, checkpoints, stats; stops at the wall-clock limit."""

            def _on_step(self) -> bool:
                if self.num_timesteps - state["last_eval"] >= cfg.eval_freq:
                    evaluate()
                    if trainer.target_reached(history):
                        state["stopped"] = "early_stopping"
                        return False
                if deadline is not None and time.time() > deadline:
                    state["stopped"] = "time_limit"
                    return False
                return True

        callbacks: list[Any] = [RunDirCallback()]
        if curriculum is not None:
            callbacks.append(make_curriculum_callback(curriculum, run_dir / "curriculum_progress.json"))
        callbacks += [c for c in self.callbacks if isinstance(c, BaseCallback)]
        remaining = cfg.total_timesteps - int(algo.num_timesteps)
        if self.target_reached(history):  # a resumed run that had already stopped early
            remaining, state["stopped"] = 0, "early_stopping"
        ended = "completed"
        try:
            try:
                if remaining > 0:
                    algo.learn(
                        remaining,
                        callback=CallbackList(callbacks),
                        progress_bar=self.progress,
                        reset_num_timesteps=resumed is None,
                    )
            except KeyboardInterrupt:
                # keep what was learned, record the interruption, and stop the pipeline (no evaluation)
                save(last_path, with_buffer=True)
                self._write_stats(
                    run_dir, history, best_metric, best_epoch, "interrupted", train_seconds0 + time.time() - t_start
                )
                raise RunInterrupted(
                    f"training interrupted at {algo.num_timesteps} environment steps; last.pt holds them",
                    run_dir=str(run_dir),
                ) from None
            if state["stopped"] in ("time_limit", "early_stopping"):
                ended = state["stopped"]
            if not history or history[-1]["timesteps"] < algo.num_timesteps:
                evaluate()
            else:
                save(last_path, with_buffer=True)
        finally:
            algo.logger.close()
            for tracker in trackers:
                tracker.close()
            venv.close()
        state["stopped"] = ended
        train_seconds = train_seconds0 + time.time() - t_start
        self._write_stats(run_dir, history, best_metric, best_epoch, state["stopped"], train_seconds)
        if cfg.plot:
            plot_learning_curves(history, run_dir / "training_curves.png")
        best = load_checkpoint(best_path)
        model.load_state_dict(best["model"])  # the model ends with the best weights, as the core expects
        return FitResult(
            best_metric=best_metric,
            best_epoch=best_epoch,
            epochs_run=len(history),
            stopped_reason=state["stopped"],
            history=history,
            train_seconds=train_seconds,
            best_checkpoint=best_path,
            last_checkpoint=last_path,
            monitor=cfg.monitor,
        )

    def _write_stats(
        self, run_dir: Path, history: list[dict[str, Any]], best: float, best_epoch: int, stopped: str, seconds: float
    ) -> None:
        from mlcore.io import atomic_write_json

        atomic_write_json(
            run_dir / "training_stats.json",
            {
                "monitor": self.config.monitor,
                "monitor_mode": "max",
                "best_metric": best,
                "best_epoch": best_epoch,
                "epochs_run": len(history),
                "stopped_reason": stopped,
                "train_seconds": seconds,
                "timesteps": history[-1]["timesteps"] if history else 0,
                "seed": self.seed,
                "device": str(self.device),
                "history": history,
            },
        )


def plot_learning_curves(history: list[dict[str, Any]], path: str | Path) -> Path | None:
    """``training_curves.png``: return and success/collision rates against environment steps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mlcore.io import atomic_write

    if not history:
        return None
    steps = [h["timesteps"] for h in history]
    fig = Figure(figsize=(11, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    mean = [h["return_mean"] for h in history]
    std = [h["return_std"] for h in history]
    ax1.plot(steps, mean, marker="o")
    ax1.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2)
    ax1.set(xlabel="environment steps", ylabel="evaluation return", title="return (mean ± std)")
    ax1.grid(True, alpha=0.3)
    for key in ("success_rate", "collision_rate", "spl"):
        ax2.plot(steps, [h[key] for h in history], marker="o", label=key)
    if any("stage" in h for h in history):
        ax2.step(steps, [h.get("stage", 0) / 4 for h in history], where="post", label="stage / 4", color="grey")
    ax2.set(xlabel="environment steps", ylabel="rate", ylim=(-0.05, 1.05), title="success / collision")
    ax2.grid(True, alpha=0.3)
    ax2.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
