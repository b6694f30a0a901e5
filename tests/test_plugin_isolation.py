"""Plugin isolation with the real plugins installed: an impostor cannot take over or break them.

Each case writes a fake installed distribution next to the real ``trc-control`` and ``nav-rl``
and runs ``python -m mlcore`` in a fresh interpreter, so entry points are discovered for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

INSTALLED = {ep.name for ep in metadata.entry_points(group="mlcore.plugins")}
pytestmark = pytest.mark.skipif(
    not {"trc-control", "nav-rl"} <= INSTALLED, reason="needs the trc-control and nav-rl plugins installed"
)


def _dist(site: Path, dist: str, entry_point: str, module: str, source: str) -> None:
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-6.6.6.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 6.6.6\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[mlcore.plugins]\n{entry_point} = {module}\n", encoding="utf-8")


def _mlcore(site: Path, *args: str, select: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    env.pop("MLCORE_PLUGINS", None)
    if select is not None:
        env["MLCORE_PLUGINS"] = select
    return subprocess.run([sys.executable, "-m", "mlcore", *args], capture_output=True, text=True, env=env, timeout=300)


def _plugins(site: Path, select: str | None = None) -> dict[str, dict]:
    result = _mlcore(site, "plugins", "--json", select=select)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


HIJACK = """
from mlcore import ComponentSpec, hookimpl

@hookimpl
def register_models():
    return [ComponentSpec("trc", "evil_trc:Model", summary="impostor")]

@hookimpl
def register_pipelines():
    return [ComponentSpec("trc", "evil_trc:Pipeline", summary="impostor", profiles={"quick": {}})]
"""


def test_impostor_with_a_real_plugins_name_sorting_first(tmp_path) -> None:
    _dist(tmp_path, "aaa-trc-control", "trc-control", "evil_trc", HIJACK)
    plugins = _plugins(tmp_path)
    assert plugins["trc-control"]["status"] == "failed"
    assert (
        "claimed by 2 distributions: aaa-trc-control (evil_trc), mlcore-trc-control" in plugins["trc-control"]["reason"]
    )
    assert plugins["nav-rl"]["status"] == "ok"
    shown = _mlcore(tmp_path, "show", "model", "trc")
    assert shown.returncode == 2 and "evil_trc" not in shown.stdout
    chosen = _plugins(tmp_path, select="mlcore-trc-control,nav-rl")
    assert chosen["trc-control"]["status"] == "ok"
    assert chosen["trc-control"]["module"] == "mlcore_trc_control.plugin"


def test_impostor_reusing_component_names_disables_only_those_names(tmp_path) -> None:
    _dist(tmp_path, "aaa-extras", "aaa-extras", "evil_trc", HIJACK)
    plugins = _plugins(tmp_path)
    for name in ("trc-control", "aaa-extras"):
        assert plugins[name]["status"] == "ok", plugins[name]
        assert any(n.startswith("model/trc is registered by plugins") for n in plugins[name]["notes"])
    assert "lqr" in plugins["trc-control"]["components"]["dataset"]  # the rest keeps working
    shown = _mlcore(tmp_path, "show", "model", "trc")
    assert shown.returncode == 2
    assert shown.stderr.strip().splitlines()[-1] == (
        "error: model/trc is registered by plugins 'aaa-extras' and 'trc-control', so neither is used; "
        "uninstall one or choose with MLCORE_PLUGINS"
    )
    listed = _mlcore(tmp_path, "plugins")
    assert "refused: model/trc is registered by plugins" in listed.stdout
    # pipelines are scoped by plugin: the impostor's pipeline 'trc' takes nothing from trc-control's
    assert "refused: pipeline/trc" not in listed.stdout
    dry = _mlcore(tmp_path, "run", "--plugin", "trc-control", "--pipeline", "trc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert 'plugin = "trc-control"' in dry.stdout and 'pipeline = "trc"' in dry.stdout
    ambiguous = _mlcore(tmp_path, "run", "--pipeline", "trc", "--dry-run")
    assert ambiguous.returncode == 2
    assert ambiguous.stderr.strip().splitlines()[-1] == (
        "error: --pipeline trc: pipeline 'trc' is registered by 2 plugins; choose one: aaa-extras:trc, "
        "trc-control:trc (or pass --plugin with --pipeline)"
    )
    alone = _mlcore(tmp_path, "show", "model", "trc", "--json", select="trc-control")
    assert json.loads(alone.stdout)["plugin"] == "trc-control"


def test_switching_the_nav_rl_model_by_set(tmp_path) -> None:
    result = _mlcore(tmp_path, "run", "--plugin", "nav-rl", "--set", "model.name=dqn", "--dry-run")
    assert result.returncode == 0, result.stderr
    model = result.stdout.split("\n[model]\n", 1)[1].split("\n[", 1)[0]
    assert model.startswith('name = "dqn"')
    assert "ent_coef" not in model and "exploration_fraction" in model  # DQN's defaults, not SAC's
