"""The graph pipelines: ``graph-single`` (one planner, the core's supervised recipe) and ``graph`` (all of them).

``graph-single`` (:class:`GraphSinglePlanner`) trains one graph planner, chosen with
``--set model.name=sym-mp-vin`` (or by its published name, ``--set algorithm=Sym-MP-VIN``), on
``maze-graphs`` (default) or ``geometric-graphs`` (``--set dataset.name=geometric-graphs``);
``--set dataset.continuous=true`` switches data, loss and model head to unit directions. It writes a
normal run directory (``config.toml``, ``checkpoints/best.pt``, ``metrics.json``, ``report.md``),
so ``mlcore evaluate`` works on it. The ``graph`` pipeline lives in :mod:`.compare`.
"""

from __future__ import annotations

from typing import Any

import attrs

from mlcore.errors import ConfigError
from mlcore.pipelines import RecipePipeline
from mlcore.pipelines.recipe import Parts, Recipe
from mlcore.pipelines.sections import ComponentConfig, component_field
from mlcore.runs import RunContext
from mlcore.training.config import TrainerConfig
from mlcore_diffplan_vins.graphs.config import GraphActionLossConfig, GraphRolloutConfig
from mlcore_diffplan_vins.graphs.specs import GRAPH_MODELS
from mlcore_diffplan_vins.pipeline import research_trainer, switch_planner

__all__ = ["GraphSingleConfig", "GraphSinglePlanner", "link_graph_config", "resolve_graph_model"]


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def resolve_graph_model(name: str, where: str = "models") -> str:
    """A registered graph planner's name from ``name`` or its published spelling (``MP-VIN``, ``GCN-VIN-v2``...)."""
    names = [n for n, *_ in GRAPH_MODELS]
    for candidate in names:
        if name == candidate or _key(candidate) == _key(name):
            return candidate
    raise ConfigError(f"{where}: unknown graph planner {name!r} (registered: {', '.join(names)})")


def link_graph_config(model_name: str, model_cfg: Any, data: Any, where: str = "model") -> Any:
    """``model_cfg`` with ``max_degree`` and ``cont_action`` taken from the data (one-line errors on conflicts)."""
    from mlcore.pipelines.recipe import link_dimensions

    dims = data.dimensions()
    if dims["cont_action"] and (model_cfg is None or "cont_action" not in attrs.fields_dict(type(model_cfg))):
        raise ConfigError(
            f"dataset.continuous=true needs a continuous-action head, which {where} {model_name!r} does not have "
            "(use mp-vin or sym-mp-vin, or set dataset.continuous=false)"
        )
    return link_dimensions(model_cfg, dims, where=where)


@attrs.define
class GraphSingleConfig:
    """Config of the ``graph-single`` pipeline: one graph planner trained with the supervised recipe.

    Attributes:
        notes: free text recorded in the report.
        algorithm: the planner by its published name (``MP-VIN``, ``Sym-MP-VIN``, ``GAT-VIN``,
            ``GCN-VIN-v2``); overrides ``model.name`` when set.
        dataset: ``name = "maze-graphs"`` (default) or ``"geometric-graphs"`` and its fields.
        model, loss, trainer, evaluator: the recipe's tables (``model`` has ``name = ...``).
    """

    notes: str = ""
    algorithm: str = ""
    dataset: ComponentConfig = component_field("dataset", "maze-graphs")
    model: ComponentConfig = component_field("model", "mp-vin")
    loss: GraphActionLossConfig = attrs.field(factory=GraphActionLossConfig)
    trainer: TrainerConfig = attrs.field(factory=research_trainer)
    evaluator: GraphRolloutConfig = attrs.field(factory=GraphRolloutConfig)


class GraphSinglePlanner(RecipePipeline[GraphSingleConfig]):
    """The supervised recipe on a graph data set with one graph planner."""

    recipe = Recipe(dataset=None, model=None, loss="graph-action", evaluator="graph-rollout")

    def __init__(self, config: GraphSingleConfig | None = None) -> None:
        config = config or GraphSingleConfig()
        if config.algorithm:
            name = resolve_graph_model(config.algorithm, where="algorithm")
            config = attrs.evolve(config, model=switch_planner(config.model, name))
        if config.model.name not in [n for n, *_ in GRAPH_MODELS]:
            raise ConfigError(
                f"model.name={config.model.name!r} is not a graph planner "
                f"(graph-single trains: {', '.join(n for n, *_ in GRAPH_MODELS)})"
            )
        super().__init__(config)

    def link(self, config: GraphSingleConfig, data: Any) -> GraphSingleConfig:
        """Model ``max_degree``/``cont_action`` and ``loss.continuous`` from the data set."""
        continuous = bool(data.config.continuous)
        model = ComponentConfig(config.model.name, link_graph_config(config.model.name, config.model.config, data))
        if config.loss.continuous and not continuous:
            raise ConfigError("loss.continuous=true but dataset.continuous=false: set dataset.continuous=true instead")
        return attrs.evolve(config, model=model, loss=attrs.evolve(config.loss, continuous=continuous))

    def extra_metrics(self, ctx: RunContext, parts: Parts[GraphSingleConfig]) -> dict[str, float]:
        """The greedy baseline and the optimal planner on the same test graphs."""
        from mlcore_diffplan_vins.graphs.baselines import greedy_choices, optimal_choices
        from mlcore_diffplan_vins.graphs.metrics import graph_rollout

        test = parts.data.graphs_of("test")  # type: ignore[attr-defined]
        if parts.config.evaluator.max_graphs:
            test = test.subset(slice(0, parts.config.evaluator.max_graphs))
        out: dict[str, float] = {}
        for name, choices in (("greedy", greedy_choices(test)), ("optimal", optimal_choices(test))):
            result = graph_rollout(test, choices)
            out.update({f"{name}_{k}": float(result[k]) for k in ("opt", "succ", "action_accuracy")})
        return out

    def report_sections(
        self, ctx: RunContext, parts: Parts[GraphSingleConfig], metrics: dict[str, float]
    ) -> list[tuple[str, str]]:
        """What the headline numbers mean, beside the baseline, and the notes."""
        model = parts.components["model"][0]
        data_name = parts.components["dataset"][0]
        continuous = parts.config.loss.continuous
        text = (
            f"{model} on {data_name}"
            + (
                " with continuous actions (predicted directions snapped to the best-aligned neighbour)"
                if continuous
                else ""
            )
            + f", rolled out from every reachable start node of the test graphs: "
            f"{100 * metrics.get('opt', float('nan')):.1f} % of start nodes follow an optimal path (%Opt), "
            f"{100 * metrics.get('succ', float('nan')):.1f} % reach the goal (%Succ), "
            f"{100 * metrics.get('action_accuracy', float('nan')):.1f} % choose an optimal first move."
        )
        if continuous and "angular_error_deg" in metrics:
            text += f" Mean angle to the closest optimal move: {metrics['angular_error_deg']:.1f}°."
        text += (
            f"\n\nBaseline on the same graphs: greedy by Euclidean distance to the goal reaches "
            f"{100 * metrics.get('greedy_opt', float('nan')):.1f} % optimally and "
            f"{100 * metrics.get('greedy_succ', float('nan')):.1f} % at all; the optimal planner (Dijkstra labels) "
            f"{100 * metrics.get('optimal_opt', float('nan')):.1f} %."
        )
        if self.config.notes:
            text += f"\n\nNotes: {self.config.notes}"
        return [("Results", text)]
