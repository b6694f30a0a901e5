"""Entry point of the ``nav-rl`` plugin: component specs only (no torch / gymnasium / SB3 import here)."""

from __future__ import annotations

from mlcore.components import ComponentSpec
from mlcore.hookspecs import hookimpl

MLCORE_API = ">=1.0,<2"

_P = "mlcore_nav_rl"


@hookimpl
def register_datasets() -> list[ComponentSpec]:
    """The navigation environment (with a planner-demonstration set)."""
    return [
        ComponentSpec(
            "nav",
            f"{_P}.data:NavData",
            f"{_P}.data:NavDataConfig",
            summary="2-D robot navigation env (range sensors, moving obstacles, sequential goals) + planner demos",
        )
    ]


@hookimpl
def register_models() -> list[ComponentSpec]:
    """SB3 agents with HER / PER / n-step / curriculum strategies."""
    extras = {"dataset": "nav", "trainer": "sb3"}
    return [
        ComponentSpec(
            "sac",
            f"{_P}.agent:NavAgent",
            f"{_P}.agent_config:SACConfig",
            summary="Soft actor-critic (SB3) + HER/PER/n-step/curriculum",
            extras={**extras, "loss": "mse"},
        ),
        ComponentSpec(
            "td3",
            f"{_P}.agent:NavAgent",
            f"{_P}.agent_config:TD3Config",
            summary="TD3 (SB3) + HER/PER/n-step/curriculum",
            extras={**extras, "loss": "mse"},
        ),
        ComponentSpec(
            "dqn",
            f"{_P}.agent:NavAgent",
            f"{_P}.agent_config:DQNConfig",
            summary="DQN (SB3, discrete actions) + HER/PER/n-step/curriculum",
            extras={**extras, "loss": "cross_entropy"},
        ),
    ]


@hookimpl
def register_trainers() -> list[ComponentSpec]:
    """The stable-baselines3 trainer."""
    return [
        ComponentSpec(
            "sb3",
            f"{_P}.trainer:SB3Trainer",
            f"{_P}.trainer:SB3TrainerConfig",
            summary="stable-baselines3 learn loop with evaluation, checkpoints (+replay buffer), TensorBoard, resume",
        )
    ]


@hookimpl
def register_evaluators() -> list[ComponentSpec]:
    """The navigation evaluation suite."""
    return [
        ComponentSpec(
            "nav",
            f"{_P}.evaluation.evaluator:NavEvaluator",
            f"{_P}.evaluation.evaluator:NavEvaluatorConfig",
            summary="Success, return, collisions, path efficiency; robustness, unseen layouts, baselines",
        )
    ]


@hookimpl
def register_pipelines() -> list[ComponentSpec]:
    """env -> agent -> sb3 trainer -> evaluation suite -> report."""
    from mlcore_nav_rl.profiles import ABLATION_PROFILES, PROFILES, SELFPLAY_PROFILES

    return [
        ComponentSpec(
            "nav",
            f"{_P}.pipeline:NavPipeline",
            f"{_P}.pipeline:NavPipelineConfig",
            summary="Train SAC/TD3/DQN (+HER/PER/n-step/curriculum) on 2-D navigation, evaluate, report",
            profiles=PROFILES,
        ),
        ComponentSpec(
            "ablation",
            f"{_P}.ablation:AblationPipeline",
            f"{_P}.ablation:AblationConfig",
            summary="plain vs +HER vs +PER vs +n-step vs +curriculum over seeds: curves, tests, report.md",
            profiles=ABLATION_PROFILES,
        ),
        ComponentSpec(
            "selfplay",
            f"{_P}.selfplay.pipeline:SelfPlayPipeline",
            f"{_P}.selfplay.pipeline:SelfPlayPipelineConfig",
            summary="DQN among a league of its own frozen snapshots (Elo) vs scripted obstacles, on unseen robots",
            profiles=SELFPLAY_PROFILES,
        ),
    ]
