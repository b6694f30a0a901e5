"""torch-geometric stays out of everything but the graph components (it costs seconds to import)."""

from __future__ import annotations

import subprocess
import sys

from mlcore.registry import get_registry
from mlcore_diffplan_vins.graphs.specs import GRAPH_DATASETS, GRAPH_MODELS

CHECK = "import sys; assert 'torch_geometric' not in sys.modules, 'torch_geometric was imported'; print('clean')"


def _clean_after(code: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", f"{code}\n{CHECK}"], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("clean"), proc.stderr[-2000:]


def test_listing_and_showing_do_not_import_torch_geometric() -> None:
    _clean_after(
        "from mlcore.cli.main import main\n"
        "for argv in (['plugins'], ['list'], ['list', 'model'], ['show', 'model', 'sym-mp-vin'],"
        " ['show', 'dataset', 'maze-graphs'], ['show', 'pipeline', 'graph-single']):\n"
        "    assert main(argv) == 0, argv"
    )


def test_grid_models_and_pipelines_do_not_import_torch_geometric() -> None:
    _clean_after(
        "import torch\n"
        "from mlcore.api import build, resolve\n"
        "m = build('model', 'vin', {'k': 3, 'hidden_channels': 4, 'q_channels': 4})\n"
        "m(m.example_input(1))\n"
        "resolve('diffplan-vins', pipeline='single')\n"
        "resolve('diffplan-vins', pipeline='graph-single')\n"
        "from mlcore_diffplan_vins.graphs import config, specs, build as b, metrics, baselines"
    )


def test_a_graph_model_does_import_it() -> None:
    """The check above can fail: building a graph planner imports torch-geometric."""
    proc = subprocess.run(
        [sys.executable, "-c", f"from mlcore.api import build\nbuild('model', 'gat-vin')\n{CHECK}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0 and "torch_geometric was imported" in proc.stderr


def test_specs_name_registered_components() -> None:
    reg = get_registry()
    for name, target, config, _ in GRAPH_DATASETS:
        spec = reg.get("dataset", name)
        assert (spec.target, spec.config) == (target, config)
    assert [n for n, *_ in GRAPH_MODELS] == ["mp-vin", "sym-mp-vin", "gat-vin", "gcn-vin-v2"]
    assert reg.get("model", "gat-vin").extras["loss"] == "graph-action"
