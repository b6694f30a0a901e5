"""The Python API behind ``mlcore run``: config precedence, run directory, reproduction, resume guard."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest
import tomllib

import mlcore
from mlcore import api
from mlcore.errors import ConfigError

TOY = """
import attrs
from mlcore import ComponentSpec, hookimpl
from mlcore.config import in_range
from mlcore.pipelines import Pipeline

@attrs.define
class Section:
    size: int = attrs.field(default=4, validator=in_range(1, 100))
    name: str = "x"

@attrs.define
class ToyConfig:
    steps: int = 3
    section: Section = attrs.field(factory=Section)

class ToyPipeline(Pipeline):
    def run(self, ctx):
        import random
        value = random.random()
        ctx.write_json("toy.json", {"steps": self.config.steps, "size": self.config.section.size, "value": value})
        return {"score": self.config.steps * self.config.section.size, "value": value}

class Plugin:
    @staticmethod
    @hookimpl
    def register_pipelines():
        return [
            ComponentSpec("toy", "toy_mlcore_plugin:ToyPipeline", "toy_mlcore_plugin:ToyConfig", summary="toy",
                          profiles={"quick": {"steps": 1}, "full": {"steps": 100, "section": {"size": 50}}}),
            ComponentSpec("other", "toy_mlcore_plugin:ToyPipeline", "toy_mlcore_plugin:ToyConfig", summary="toy 2"),
        ]
"""


@pytest.fixture
def toy(tmp_path, monkeypatch, isolated_registry):
    mod_dir = tmp_path / "mods"
    mod_dir.mkdir()
    (mod_dir / "toy_mlcore_plugin.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(mod_dir))
    sys.modules.pop("toy_mlcore_plugin", None)
    module = importlib.import_module("toy_mlcore_plugin")
    isolated_registry({"toy": module.Plugin})
    yield tmp_path
    sys.modules.pop("toy_mlcore_plugin", None)


def test_precedence_defaults_profile_file_set(toy):
    assert api.resolve("toy").config.steps == 1  # quick profile is the default
    full = api.resolve("toy", profile="full")
    assert (full.config.steps, full.config.section.size) == (100, 50)
    cfg_file = toy / "c.toml"
    cfg_file.write_text("[run]\nseed = 7\n[section]\nsize = 9\n")
    r = api.resolve("toy", profile="full", config=cfg_file, overrides=["steps=5"])
    assert (r.config.steps, r.config.section.size, r.settings.seed) == (5, 9, 7)
    assert api.resolve("toy", config=cfg_file, seed=3).settings.seed == 3


def test_config_errors_name_file_and_key(toy):
    cfg_file = toy / "c.toml"
    cfg_file.write_text("[section]\nsize = 1000\n")
    with pytest.raises(ConfigError, match=r"c.toml: section.size=1000 is out of range \(allowed: \[1, 100\]\)"):
        api.resolve("toy", config=cfg_file)
    with pytest.raises(ConfigError, match=r"unknown key 'section\.sise'; did you mean 'size'"):
        api.resolve("toy", overrides=["section.sise=3"])
    with pytest.raises(
        ConfigError, match=r"profile='huge' is not allowed for pipeline 'toy' \(allowed: quick, full, default\)"
    ):
        api.resolve("toy", profile="huge")
    with pytest.raises(ConfigError, match=r"has no pipeline 'nope' \(available: toy, other\)"):
        api.resolve("toy", pipeline="nope")
    with pytest.raises(mlcore.ComponentNotFoundError, match="no plugin named 'toyy'; did you mean 'toy'"):
        api.resolve("toyy")


def test_run_writes_run_dir_and_reproduces(toy):
    out = toy / "run1"
    result = api.run("toy", out=out, seed=11, overrides=["section.size=6"])
    assert result.metrics["score"] == 6
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["run"] == {"plugin": "toy", "pipeline": "toy", "profile": "quick", "seed": 11, "device": "auto", "threads": 0}
    assert saved["section"]["size"] == 6
    env = json.loads((out / "environment.json").read_text())
    assert env["seed"] == 11 and env["device"] == "cpu" and env["mlcore"] == mlcore.__version__
    assert json.loads((out / "summary.json").read_text())["metrics"]["score"] == 6
    assert (out / "run.log").read_text().count("running toy/toy") == 1
    # the saved config alone reproduces the run, including its seeded randomness
    again = api.run(config=out / "config.toml", out=toy / "run2")
    assert again.metrics == result.metrics
    assert json.loads((toy / "run2" / "toy.json").read_text()) == json.loads((out / "toy.json").read_text())


def test_existing_run_dir_with_other_config_is_refused(toy):
    out = toy / "run"
    api.run("toy", out=out)
    api.run("toy", out=out)  # same config: resumes into the same directory
    with pytest.raises(ConfigError, match="already holds a run with a different config"):
        api.run("toy", out=out, overrides=["steps=2"])


def test_build_validates(toy):
    loss = mlcore.build("loss", "huber", {"delta": 2.0})
    assert loss is not None
    with pytest.raises(ConfigError, match=r"loss\.delta"):
        mlcore.build("loss", "huber", {"delta": -1.0})
