"""The entry-point module stays light and registers every component."""

from __future__ import annotations

import subprocess
import sys

from mlcore.registry import get_registry
from mlcore_diffplan_vins.models import MODEL_SPECS


def test_entry_point_module_imports_no_heavy_packages() -> None:
    code = (
        "import sys, mlcore_diffplan_vins.plugin as p; "
        "heavy = [m for m in ('torch', 'scipy', 'numpy', 'matplotlib') if m in sys.modules]; "
        "assert not heavy, heavy; assert p.MLCORE_API"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_components_registered() -> None:
    info = get_registry().plugin("diffplan-vins")
    names = {(c.kind, c.name) for c in info.components}
    expected = {("dataset", "grid-mazes"), ("loss", "optimal-set-ce"), ("evaluator", "grid-rollout")}
    expected |= {("pipeline", p) for p in ("grid", "compare", "single")}
    expected.add(("pipeline", "release"))  # the model release (release/)
    expected |= {("model", name) for name, *_ in MODEL_SPECS}
    # the graph half (part 2)
    expected |= {("dataset", "maze-graphs"), ("dataset", "geometric-graphs"), ("loss", "graph-action")}
    expected |= {("evaluator", "graph-rollout"), ("pipeline", "graph"), ("pipeline", "graph-single")}
    expected |= {("model", name) for name in ("mp-vin", "sym-mp-vin", "gat-vin", "gcn-vin-v2")}
    assert names == expected
    assert {"vin", "cnn"} <= {name for name, *_ in MODEL_SPECS}
    full = get_registry().get("pipeline", "grid").profiles["full"]
    assert full["dataset"]["num"] == 10000 and full["trainer"]["epochs"] == 100 and full["trainer"]["batch_size"] == 32


def test_research_defaults() -> None:
    from mlcore.api import resolve

    run = resolve("diffplan-vins", profile="default")
    t = run.config.trainer
    assert (t.epochs, t.batch_size, t.lr, t.optimizer, t.momentum) == (100, 32, 1e-3, "rmsprop", 0.0)
    assert run.config.planner.group == "d4" and run.config.notes == "" and run.config.dataset.size == 15
