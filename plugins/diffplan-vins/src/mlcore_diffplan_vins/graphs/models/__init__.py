"""The graph planners (torch-geometric): MP-VIN, Sym-MP-VIN, GAT-VIN, GCN-VIN-v2.

Every planner is built as ``Cls(config)`` and maps a :class:`torch_geometric.data.Batch` of the
graph data sets to ``[n, D]`` logits over each node's neighbour slots, or ``[n, 2]`` directions
when its config has ``cont_action = true`` (see :mod:`.base`).
"""

from mlcore_diffplan_vins.graphs.models.base import GraphPlanner, example_graphs
from mlcore_diffplan_vins.graphs.models.gnn import GATVIN, GCNVINv2
from mlcore_diffplan_vins.graphs.models.mp import MPVIN, SymMPVIN

__all__ = ["GATVIN", "MPVIN", "GCNVINv2", "GraphPlanner", "SymMPVIN", "example_graphs"]
