"""The entry-point module stays light and registers every component."""

from __future__ import annotations

import subprocess
import sys

from mlcore.registry import get_registry


def test_entry_point_module_imports_no_heavy_packages() -> None:
    code = (
        "import sys, mlcore_trc_control.plugin as p; "
        "heavy = [m for m in ('torch', 'scipy', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy; assert p.MLCORE_API"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_components_registered() -> None:
    info = get_registry().plugin("trc-control")
    names = {(c.kind, c.name) for c in info.components}
    assert names == {("dataset", "lqr"), ("model", "trc"), ("evaluator", "trc"), ("pipeline", "trc")}
    pipe = get_registry().get("pipeline", "trc")
    assert set(pipe.profiles) == {"quick", "full"}
    full = pipe.profiles["full"]
    assert full["dataset"]["num_samples"] == 10000 and full["trainer"]["epochs"] == 100
    assert full["model"]["size"] == "medium"
    assert get_registry().get("model", "trc").extras == {"dataset": "lqr"}


def test_pipeline_config_overrides_structure() -> None:
    from mlcore.api import resolve

    run = resolve("trc-control", profile="quick", overrides=["model.size=medium", "trainer.epochs=5"])
    assert run.config.model.size == "medium" and run.config.trainer.epochs == 5
    assert run.config.trainer.batch_size == 64 and run.config.trainer.lr == 1e-3
