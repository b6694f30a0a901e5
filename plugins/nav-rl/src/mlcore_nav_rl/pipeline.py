"""The ``nav`` pipeline: environment -> agent (SB3 + strategies) -> ``sb3`` trainer -> ``nav`` evaluator -> report.

Profiles:

- ``quick`` (a few minutes on 2 CPU cores): HER + SAC on the *sparse* goal-reaching task (no
  obstacles, 50-step episodes) — without HER the sparse reward is almost never seen; with it the
  success rate climbs from ~0 to well above the random and planner baselines within ~15k steps.
- ``full``: SAC + n-step (3) + curriculum through the four stages, shaped reward, 8 envs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from mlcore.config import ComponentConfig, component_field
from mlcore.pipelines import Pipeline
from mlcore.runs import RunContext
from mlcore_nav_rl.data import NavDataConfig
from mlcore_nav_rl.evaluation.evaluator import NavEvaluatorConfig
from mlcore_nav_rl.profiles import PROFILES  # noqa: F401  (re-exported)
from mlcore_nav_rl.trainer import SB3TrainerConfig


@attrs.define
class NavPipelineConfig:
    """``[dataset]`` (the environment), ``[model]`` (sac | td3 | dqn + strategies), ``[trainer]``, ``[evaluator]``."""

    dataset: NavDataConfig = attrs.field(factory=NavDataConfig)
    model: ComponentConfig = component_field("model", "sac")
    trainer: SB3TrainerConfig = attrs.field(factory=SB3TrainerConfig)
    evaluator: NavEvaluatorConfig = attrs.field(factory=NavEvaluatorConfig)


class NavPipeline(Pipeline):
    """Train an agent on the navigation task and evaluate it with the full suite."""

    config: NavPipelineConfig

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Train (resuming from ``last.pt`` when present), evaluate, write ``report.md``."""
        from mlcore.io import atomic_write_text
        from mlcore.registry import get_registry
        from mlcore.training.checkpoint import make_meta
        from mlcore_nav_rl.data import NavData
        from mlcore_nav_rl.evaluation.evaluator import NavEvaluator
        from mlcore_nav_rl.report import report_markdown
        from mlcore_nav_rl.trainer import SB3Trainer

        cfg = self.config
        spec = get_registry().get("model", cfg.model.name)
        model = spec.build(cfg.model.config)
        data_cfg = attrs.evolve(
            cfg.dataset,
            goal_conditioned=model.goal_conditioned,
            env=attrs.evolve(cfg.dataset.env, action_type=model.action_type),
        )
        data = NavData(data_cfg).prepare()
        trainer = SB3Trainer(cfg.trainer, device=ctx.device, seed=ctx.seed, progress=ctx.progress)
        meta = make_meta(
            plugin="nav-rl",
            components={
                "dataset": ("nav", data_cfg),
                "model": (cfg.model.name, cfg.model.config),
                "trainer": ("sb3", cfg.trainer),
                "evaluator": ("nav", cfg.evaluator),
            },
            data=data,
            pipeline=f"nav-rl/{ctx.pipeline}",
            seed=ctx.seed,
        )
        result = trainer.fit(model, data, None, run_dir=ctx.out_dir, meta=meta)
        metrics: dict[str, Any] = NavEvaluator(cfg.evaluator).evaluate(
            model, data, device=ctx.device, out_dir=ctx.out_dir
        )
        metrics["train_timesteps"] = float(result.history[-1]["timesteps"]) if result.history else 0.0
        metrics["best_eval_point"] = float(result.best_epoch)
        text = report_markdown(
            title=f"nav-rl: {cfg.model.name} ({ctx.profile})",
            algorithm=cfg.model.name,
            model_config=cfg.model.config,
            env_config=data_cfg.env,
            trainer_config=cfg.trainer,
            history=result.history,
            best_epoch=result.best_epoch,
            metrics=metrics,
            episodes=cfg.evaluator.episodes,
            run_dir=ctx.out_dir,
            goal_conditioned=model.goal_conditioned,
        )
        atomic_write_text(Path(ctx.out_dir) / "report.md", text)
        return metrics
