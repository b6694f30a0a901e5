"""Entry point of the diffplan-vins plugin: component specs only (no torch or numpy import here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcore.components import ComponentSpec
from mlcore.hookspecs import hookimpl
from mlcore_diffplan_vins.graphs.specs import GRAPH_DATASETS, GRAPH_MODELS, GRAPH_PROFILES, GRAPH_SINGLE_PROFILES
from mlcore_diffplan_vins.models import MODEL_SPECS

if TYPE_CHECKING:
    import click

MLCORE_API = ">=1.0,<2"

_TRAINER = {"epochs": 100, "batch_size": 32, "lr": 1e-3, "optimizer": "rmsprop"}

#: ``mlcore run --plugin diffplan-vins --profile quick|full``: overrides of the pipeline config.
PROFILES = {
    "quick": {
        "dataset": {"size": 15, "num": 600},
        "planner": {"k": 15},
        "model_overrides": {
            "vin": {"hidden_channels": 50, "q_channels": 16},
            "symvin": {"hidden_channels": 4, "q_channels": 4},
        },
        "trainer": {"epochs": 5, "batch_size": 32, "lr": 5e-3},
        "generalisation": {"sizes": [28], "num": 30},
    },
    "full": {
        "dataset": {"size": 15, "num": 10000},
        "trainer": _TRAINER,
        "generalisation": {"sizes": [28, 50], "num": 200},
    },
}

#: The ``compare`` pipeline's profiles (every model, so the quick one is smaller still).
COMPARE_PROFILES = {
    "quick": {
        "dataset": {"size": 15, "num": 600},
        "planner": {"k": 15, "hidden_channels": 4, "q_channels": 4},
        "model_overrides": {"vin": {"hidden_channels": 32, "q_channels": 12}, "cnn": {"hidden_channels": 16}},
        "trainer": {"epochs": 4, "batch_size": 32, "lr": 5e-3},
        "generalisation": {"sizes": [28], "num": 20},
    },
    "full": PROFILES["full"],
}


# --------------------------------------------------------------------------- graph planners (part 2)
# Specs of the graph half (mlcore_diffplan_vins.graphs); torch-geometric is imported only when one is used.

_G = "mlcore_diffplan_vins.graphs"
_GRAPH_PAIRING = {"dataset": "maze-graphs", "loss": "graph-action", "evaluator": "graph-rollout"}


def graph_datasets() -> list[ComponentSpec]:
    """``maze-graphs`` and ``geometric-graphs``."""
    return [ComponentSpec(name, target, config, summary=summary) for name, target, config, summary in GRAPH_DATASETS]


def graph_models() -> list[ComponentSpec]:
    """MP-VIN, Sym-MP-VIN, GAT-VIN, GCN-VIN-v2."""
    return [
        ComponentSpec(name, target, config, summary=summary, extras=dict(_GRAPH_PAIRING))
        for name, target, config, summary in GRAPH_MODELS
    ]


def graph_losses() -> list[ComponentSpec]:
    """``graph-action``."""
    return [
        ComponentSpec(
            "graph-action",
            f"{_G}.loss:GraphActionLoss",
            f"{_G}.config:GraphActionLossConfig",
            summary="-log P(optimal next-node set) over each node's neighbours, or 1 - cos to the unit direction",
        )
    ]


def graph_evaluators() -> list[ComponentSpec]:
    """``graph-rollout``."""
    return [
        ComponentSpec(
            "graph-rollout",
            f"{_G}.evaluation:GraphRolloutEvaluator",
            f"{_G}.config:GraphRolloutConfig",
            summary="%Opt, %Succ, action accuracy (and angular error) from every reachable start node of the graphs",
            extras={"dataset": "maze-graphs", "model": "mp-vin"},
        )
    ]


def graph_pipelines() -> list[ComponentSpec]:
    """``graph`` (every graph planner + baselines) and ``graph-single`` (one planner, the supervised recipe)."""
    return [
        ComponentSpec(
            "graph",
            f"{_G}.compare:GraphComparison",
            f"{_G}.compare:GraphComparisonConfig",
            summary="maze graphs -> MP-VIN, Sym-MP-VIN, GAT-VIN, GCN-VIN-v2 + greedy/optimal baselines -> report",
            profiles=GRAPH_PROFILES,
        ),
        ComponentSpec(
            "graph-single",
            f"{_G}.pipeline:GraphSinglePlanner",
            f"{_G}.pipeline:GraphSingleConfig",
            summary="one graph planner (--set model.name=sym-mp-vin, dataset.continuous=true) -> rollouts -> report",
            profiles=GRAPH_SINGLE_PROFILES,
        ),
    ]


# --------------------------------------------------------------------------- hooks


@hookimpl
def register_datasets() -> list[ComponentSpec]:
    """DFS mazes with exact Dijkstra labels."""
    return [
        ComponentSpec(
            "grid-mazes",
            "mlcore_diffplan_vins.data:GridMazes",
            "mlcore_diffplan_vins.data:GridMazesConfig",
            summary="M×M DFS mazes (per-maze wall opening), goal, Dijkstra distances and optimal action sets",
        ),
        *graph_datasets(),
    ]


@hookimpl
def register_models() -> list[ComponentSpec]:
    """Every grid planner of :data:`mlcore_diffplan_vins.models.MODEL_SPECS`."""
    return [
        ComponentSpec(
            name,
            target,
            config,
            summary=summary,
            extras={"dataset": "grid-mazes", "loss": "optimal-set-ce", "evaluator": "grid-rollout"},
        )
        for name, target, config, summary in MODEL_SPECS
    ] + graph_models()


@hookimpl
def register_losses() -> list[ComponentSpec]:
    """Cross-entropy against the optimal action set."""
    return [
        ComponentSpec(
            "optimal-set-ce",
            "mlcore_diffplan_vins.loss:OptimalSetLoss",
            "mlcore_diffplan_vins.loss:OptimalSetLossConfig",
            summary="-log P(optimal action set) per labelled cell (or CE to the uniform set distribution)",
        ),
        *graph_losses(),
    ]


@hookimpl
def register_evaluators() -> list[ComponentSpec]:
    """Rollouts from every reachable start cell."""
    return [
        ComponentSpec(
            "grid-rollout",
            "mlcore_diffplan_vins.evaluation:GridRolloutEvaluator",
            "mlcore_diffplan_vins.evaluation:GridRolloutConfig",
            summary="%Opt, %Succ and action accuracy of the greedy policy from every reachable start cell",
            extras={"dataset": "grid-mazes", "model": "vin"},
        ),
        *graph_evaluators(),
    ]


@hookimpl
def register_pipelines() -> list[ComponentSpec]:
    """``grid`` (default: VIN and SymVIN side by side), ``compare`` (every model) and ``single`` (one model)."""
    return [
        ComponentSpec(
            "grid",
            "mlcore_diffplan_vins.pipeline:PlannerComparison",
            "mlcore_diffplan_vins.pipeline:ComparisonConfig",
            summary="generate mazes -> train VIN and SymVIN -> rollouts, generalisation 15->28, baselines -> report",
            profiles=PROFILES,
        ),
        ComponentSpec(
            "compare",
            "mlcore_diffplan_vins.pipeline:PlannerComparison",
            "mlcore_diffplan_vins.pipeline:CompareAllConfig",
            summary="every registered grid planner on identical data, with baselines and a generalisation table",
            profiles=COMPARE_PROFILES,
        ),
        ComponentSpec(
            "single",
            "mlcore_diffplan_vins.pipeline:SinglePlanner",
            "mlcore_diffplan_vins.pipeline:SingleConfig",
            summary="one planner (--set model.name=... or --set algorithm=SymVIN) -> rollouts -> report",
            profiles={
                "quick": {"dataset": {"num": 800}, "trainer": {"epochs": 6, "lr": 5e-3}},
                "full": {"dataset": {"num": 10000}, "trainer": _TRAINER},
            },
        ),
        *graph_pipelines(),
    ]


# --------------------------------------------------------------------------- model release (issue 15)

#: The ``release`` pipeline's profiles (see :mod:`mlcore_diffplan_vins.release.pipeline`).
RELEASE_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "entry_profile": "quick",
        "quick_sizes": True,
        "overrides": {
            "single": ["dataset.num=120", "trainer.epochs=2", "evaluator.max_mazes=10"],
            "graph-single": ["dataset.num=60", "trainer.epochs=2", "evaluator.max_graphs=10"],
        },
        "notes": "quick profile: tiny networks, 2 epochs on 60-120 mazes/graphs (a CI check, not usable models)",
    },
    "full": {"entry_profile": "full"},
}


@hookimpl(specname="register_pipelines")
def register_release_pipeline() -> list[ComponentSpec]:
    """``release``: the release table's models -> ``pretrained_models/`` and its ``.tar.gz``.

    Listed after ``register_pipelines``' own (hooks of one plugin run in name order), so ``grid`` stays the default.
    """
    return [
        ComponentSpec(
            "release",
            "mlcore_diffplan_vins.release.pipeline:ReleasePipeline",
            "mlcore_diffplan_vins.release.pipeline:ReleaseConfig",
            summary="train the release table (single/graph-single runs) -> pretrained_models/ + .tar.gz, checked",
            profiles=RELEASE_PROFILES,
        )
    ]


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``mlcore diffplan-vins check-release PATH``."""
    from mlcore_diffplan_vins.release.cli import add_commands

    add_commands(cli)
