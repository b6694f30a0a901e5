"""The ``nav`` evaluator: the evaluation suite on seeded episodes.

For the trained agent it measures success rate, mean/std return, collision rate, path
efficiency (optimal / travelled length on successful episodes), SPL and episode length over
``episodes`` seeded episodes on the dataset's environment, and optionally

- per curriculum stage (``stages``): the same figures on each stage (prefix ``stage<k>_``);
- robustness: observation noise, action delay, sensor dropout (prefixes ``noise_``, ``delay_``, ``dropout_``);
- generalisation: layouts never used in training (prefix ``unseen_``);
- baselines on the very same episodes: uniform random (``random_``) and the potential-field planner (``planner_``).

``evaluate_checkpoint`` rebuilds agent and environment from a checkpoint alone (``mlcore evaluate``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs

from mlcore.config import in_range, positive
from mlcore.evaluation import Evaluator
from mlcore_nav_rl.evaluation.episodes import EPISODE_METRICS, run_episodes, summarize

log = logging.getLogger(__name__)

#: first layout id of the "unseen" layouts (training pools use small ids)
UNSEEN_LAYOUT_OFFSET = 1_000_000


@attrs.define
class NavEvaluatorConfig:
    """Evaluation suite settings."""

    episodes: int = attrs.field(default=50, validator=positive)
    seed: int = 100_000
    #: curriculum stages (0-based, default stage definitions) to evaluate on besides the dataset env
    stages: list[int] = attrs.field(factory=list)
    robustness: bool = True
    noise_sigma: float = attrs.field(default=0.05, validator=in_range(0.0))
    action_delay: int = attrs.field(default=2, validator=in_range(0))
    dropout: float = attrs.field(default=0.2, validator=in_range(0.0, 1.0))
    unseen_layouts: bool = True
    baselines: bool = True
    gif: bool = True


class NavEvaluator(Evaluator):
    """Success, return, collisions, path efficiency; robustness, unseen layouts and baselines."""

    metrics = EPISODE_METRICS
    config: NavEvaluatorConfig

    def __init__(self, config: NavEvaluatorConfig | None = None) -> None:
        super().__init__(config or NavEvaluatorConfig())

    def _episodes(
        self,
        policy: Any,
        make: Any,
        *,
        layout_ids: list[int] | None = None,
        wrap: tuple[str, float] | None = None,
        gif: Path | None = None,
    ) -> dict[str, float]:
        from mlcore_nav_rl.evaluation.robustness import wrap as wrap_env

        cfg = self.config
        env = make(render_mode="rgb_array" if gif else None)
        if wrap is not None:
            env = wrap_env(env, wrap[0], wrap[1], seed=cfg.seed)
        records = run_episodes(
            policy, env, cfg.episodes, seed=cfg.seed, layout_ids=layout_ids, record=1 if gif else 0, gif_path=gif
        )
        return summarize(records)

    def evaluate(
        self, model: Any, data: Any, *, device: Any = "cpu", out_dir: str | Path | None = None
    ) -> dict[str, float]:
        """Run the suite for ``model`` (a ``NavAgent``) on ``data``'s environment."""
        from mlcore_nav_rl.curriculum import default_stages
        from mlcore_nav_rl.evaluation.baselines import PotentialFieldPolicy, RandomPolicy

        cfg = self.config
        model.eval()
        env_kw = {"goal_conditioned": model.goal_conditioned, "action_type": model.action_type}

        def make(render_mode: str | None = None, **fields: Any) -> Any:
            return data.make_env(render_mode=render_mode, **env_kw, **fields)

        gif = Path(out_dir) / "plots" / "eval_episode.gif" if (out_dir is not None and cfg.gif) else None
        result = dict(self._episodes(model, make, gif=gif))
        stage_defs = default_stages()
        for k in cfg.stages:
            if not 0 <= k < len(stage_defs):
                from mlcore.errors import ConfigError

                raise ConfigError(f"evaluator.stages: stage {k} does not exist (0..{len(stage_defs) - 1})")
            fields = stage_defs[k].env_fields()
            res = self._episodes(model, lambda render_mode=None, f=fields: make(render_mode, **f))
            result.update({f"stage{k}_{m}": v for m, v in res.items()})
        if cfg.robustness:
            for name, level in (("noise", cfg.noise_sigma), ("delay", cfg.action_delay), ("dropout", cfg.dropout)):
                res = self._episodes(model, make, wrap=(name, level))
                result.update({f"{name}_{m}": res[m] for m in ("success_rate", "return_mean", "collision_rate")})
        if cfg.unseen_layouts:
            ids = list(range(UNSEEN_LAYOUT_OFFSET, UNSEEN_LAYOUT_OFFSET + cfg.episodes))
            res = self._episodes(model, make, layout_ids=ids)
            result.update({f"unseen_{m}": res[m] for m in ("success_rate", "return_mean", "collision_rate", "spl")})
        if cfg.baselines:
            probe = make()
            for name, policy in (
                ("random", RandomPolicy(probe.action_space, cfg.seed)),
                ("planner", PotentialFieldPolicy(probe)),
            ):
                res = self._episodes(policy, make)
                result.update({f"{name}_{m}": res[m] for m in ("success_rate", "return_mean", "collision_rate", "spl")})
        return self.finish(result, out_dir)

    def evaluate_checkpoint(
        self, ckpt: dict[str, Any], *, device: Any = "cpu", out_dir: str | Path | None = None
    ) -> dict[str, float]:
        """Rebuild the agent and its environment from a checkpoint and run :meth:`evaluate`."""
        from mlcore.errors import CheckpointError
        from mlcore.registry import get_registry
        from mlcore.training.checkpoint import build_model

        model = build_model(ckpt, device="cpu")
        if not hasattr(model, "goal_conditioned"):
            raise CheckpointError(f"checkpoint {ckpt.get('path', '?')} does not hold a nav-rl agent")
        section = ckpt["meta"].get("components", {}).get("dataset")
        if not section:
            raise CheckpointError(f"checkpoint {ckpt.get('path', '?')} names no dataset (environment)")
        spec = get_registry().get("dataset", section["name"])
        data = spec.build(spec.make_config(section.get("config") or {}, where="dataset."))
        return self.evaluate(model, data, device=device, out_dir=out_dir)
