"""The Python API behind ``mlcore run``: config precedence, run directory, reproduction, resume guard."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import time

import pytest
import tomllib

import mlcore
from mlcore import api
from mlcore.errors import CheckpointError, ConfigError, RunInterrupted
from mlcore.runs import RunLock

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
class Epochs:
    epochs: int = 1
    budget: int = attrs.field(default=100, metadata={"mlcore_extendable": True})

@attrs.define
class ToyConfig:
    steps: int = 3
    section: Section = attrs.field(factory=Section)
    trainer: Epochs = attrs.field(factory=Epochs)
    sleep: float = 0.0
    blob: int = 0

class ToyPipeline(Pipeline):
    def check(self, ctx):
        from mlcore.errors import ConfigError
        if self.config.section.name == "bad":
            raise ConfigError("section.name='bad' does not fit the data")

    def run(self, ctx):
        import random, time
        from mlcore.errors import RunInterrupted
        if self.config.sleep:
            (ctx.out_dir / "started").write_text("1")
            end = time.monotonic() + self.config.sleep
            while time.monotonic() < end:
                time.sleep(0.05)
        if self.config.steps == 13:
            ctx.write_text("checkpoints/last.pt", "x")
            raise RunInterrupted("stopped after epoch 1", run_dir=str(ctx.out_dir), signal_name="SIGTERM")
        # like the trainer: train up to trainer.epochs, and touch nothing when they are done
        last, done = ctx.out_dir / "checkpoints" / "last.pt", f"epochs {self.config.trainer.epochs}"
        if not last.exists() or last.read_text() != done:
            ctx.write_text("checkpoints/last.pt", done)
        if self.config.blob:
            ctx.write_text("blob.txt", "x" * self.config.blob)
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
    assert saved["run"] == {
        "plugin": "toy",
        "pipeline": "toy",
        "profile": "quick",
        "seed": 11,
        "device": "auto",
        "threads": 0,
    }
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


def test_failed_preflight_writes_nothing(toy):
    out = toy / "new" / "run"
    with pytest.raises(ConfigError, match=r"section\.name='bad' does not fit the data"):
        api.run("toy", out=out, overrides=["section.name=bad"])
    assert not out.exists()  # created for the lock, removed again: nothing behind
    existing = toy / "existing"
    existing.mkdir()
    with pytest.raises(ConfigError, match="does not fit"):
        api.run("toy", out=existing, overrides=["section.name=bad"])
    assert not (existing / "config.toml").exists()
    # the corrected run is not refused as "a different config"
    assert api.run("toy", out=existing, overrides=["section.name=good"]).metrics["score"] == 4


def test_unknown_tracker_or_callback_names_fail_before_writing(toy, monkeypatch):
    from mlcore.pipelines.train import TrainPipelineConfig

    cfg = TrainPipelineConfig()
    cfg.trainer.config.callbacks = ["grad_histogram"]
    with pytest.raises(ConfigError, match=r"trainer\.callbacks: no callback named 'grad_histogram'; did you mean"):
        api._preflight(cfg)
    cfg.trainer.config.callbacks = []
    cfg.trainer.config.trackers = ["tensorbord"]
    with pytest.raises(ConfigError, match=r"trainer\.trackers: no tracker named 'tensorbord'"):
        api._preflight(cfg)
    out = toy / "t"
    with pytest.raises(ConfigError, match=r"trainer\.callbacks: no callback named 'nope'"):
        api.train({"trainer": {"callbacks": ["nope"]}, "loss": {"name": "mse"}}, out=out)
    assert not out.exists()


def test_dir_with_config_but_nothing_trained_is_reused(toy):
    out = toy / "run"
    out.mkdir()
    (out / "config.toml").write_text('[run]\nplugin = "toy"\n[section]\nsize = 99\n')
    assert api.run("toy", out=out, overrides=["steps=2"]).metrics["score"] == 8
    assert "size = 4" in (out / "config.toml").read_text()
    # interrupted before its first checkpoint: nothing trained either
    (out / "checkpoints" / "last.pt").unlink()
    (out / "summary.json").write_text('{"status": "interrupted"}')
    assert api.run("toy", out=out, overrides=["steps=3"]).metrics["score"] == 12
    # a finished run without checkpoints keeps its results
    (out / "checkpoints" / "last.pt").unlink()
    with pytest.raises(ConfigError, match="different config"):
        api.run("toy", out=out, overrides=["steps=4"])


def test_extending_a_finished_run_and_every_suggested_command_works(toy):
    out = toy / "run"
    api.run("toy", out=out)
    # more epochs: accepted, config.toml records them
    api.run("toy", out=out, overrides=["trainer.epochs=5"])
    assert "epochs = 5" in (out / "config.toml").read_text()
    api.run(resume=out, overrides=["trainer.epochs=7"])
    assert "epochs = 7" in (out / "config.toml").read_text()
    api.run(resume=out, overrides=["trainer.budget=200"])  # a field marked mlcore_extendable
    assert "budget = 200" in (out / "config.toml").read_text()
    # anything else: refused, and the suggested command is then accepted
    with pytest.raises(ConfigError) as err:
        api.run(resume=out, overrides=["steps=2"])
    msg = str(err.value)
    assert "steps: 1 -> 2" in msg and f"`mlcore run --resume {out}`" in msg
    api.run(resume=out)  # what the message suggests
    with pytest.raises(ConfigError, match="drop --config/--out"):
        api.run(resume=out, out=out)


def test_noop_resume_keeps_summary(toy):
    out = toy / "run"
    api.run("toy", out=out)
    before = (out / "summary.json").read_bytes()
    time.sleep(0.02)
    api.run(resume=out)  # nothing left to train: the checkpoint is untouched
    assert (out / "summary.json").read_bytes() == before
    api.run(resume=out, overrides=["trainer.epochs=2"])  # this session trains: a new summary
    assert (out / "summary.json").read_bytes() != before
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"


def test_interrupt_writes_summary_releases_lock_and_reraises(toy):
    out = toy / "run"
    with pytest.raises(RunInterrupted) as err:
        api.run("toy", out=out, overrides=["steps=13"])
    assert err.value.exit_code == 130 and err.value.signal_name == "SIGTERM" and err.value.run_dir == str(out)
    assert f"resume with `mlcore run --resume {out}`" in str(err.value)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM" and summary["metrics"] == {}
    assert not (out / "metrics.json").exists()
    RunLock(out).acquire().release()  # released
    with pytest.raises(RunInterrupted):  # the suggested command resumes (and is interrupted again here)
        api.run(resume=out)


def test_run_refused_while_another_holds_the_directory(toy):
    out = toy / "run"
    out.mkdir()
    with RunLock(out), pytest.raises(mlcore.MlcoreError, match=r"another run \(pid \d+\)"):
        api.run("toy", out=out)
    assert not (out / "config.toml").exists()


def test_stale_tmp_removed_at_start(toy):
    out = toy / "run"
    api.run("toy", out=out)
    stale = out / "checkpoints" / ".last.pt.ab12cd_3.tmp"
    stale.write_bytes(b"half")
    api.run("toy", out=out)
    assert not stale.exists()


def test_threads_setting_is_applied_and_recorded(toy):
    import torch

    before = torch.get_num_threads()
    try:
        out = toy / "run"
        api.run("toy", out=out, threads=1)
        env = json.loads((out / "environment.json").read_text())
        assert env["torch_threads"] == 1 and env["threads_setting"] == 1
        assert "threads = 1" in (out / "config.toml").read_text()
        api.run("toy", out=out, threads=2)  # an execution setting: not "a different config"
        assert json.loads((out / "environment.json").read_text())["torch_threads"] == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match=r"run\.threads=-1 is out of range"):
        api.resolve("toy", overrides=["run.threads=-1"])


def test_build_validates(toy):
    loss = mlcore.build("loss", "huber", {"delta": 2.0})
    assert loss.config.delta == 2.0
    with pytest.raises(ConfigError, match=r"loss\.delta"):
        mlcore.build("loss", "huber", {"delta": -1.0})


def test_execution_fields_are_not_a_different_config():
    """num_workers/progress may change on resume (a smaller machine); a trained quantity may not."""
    old = {"run": {"threads": 2}, "trainer": {"num_workers": 8, "progress": True, "lr": 0.1}}
    new = {"run": {"threads": 1}, "trainer": {"num_workers": 2, "progress": False, "lr": 0.1}}
    assert api.config_differences(old, new) == []
    assert api.config_differences(old, {**new, "trainer": {**new["trainer"], "lr": 0.2}}) == [("trainer.lr", 0.1, 0.2)]


def test_build_takes_a_component_table(toy):
    """``mlcore.build("loss", cfg.loss)`` with a pipeline config's component table (the tutorial's line)."""
    from mlcore.pipelines.sections import ComponentConfig
    from mlcore.registry import get_registry

    table = ComponentConfig("huber", get_registry().get("loss", "huber").make_config({"delta": 3.0}))
    assert mlcore.build("loss", table).config.delta == 3.0


def test_old_run_config_with_renamed_tables_resumes(tmp_path):
    """A config.toml saved before a table rename (or with ``loss = "mse"`` for a loss table) is the same config."""
    import attrs

    from mlcore.pipelines.sections import component_field

    @attrs.define
    class Data:
        n: int = 3

    @attrs.define
    class Cfg:
        dataset: Data = attrs.field(factory=Data, metadata={"mlcore_old_names": ("data",)})
        loss: object = component_field("loss", "mse")

    old = {"run": {"plugin": "p"}, "data": {"n": 3}, "loss": "mse"}
    new = api._as_current_document(old, Cfg)
    assert api.config_differences(new, {"run": {"plugin": "p"}, **api.unstructure(Cfg())}) == []
    changed = api._as_current_document({**old, "data": {"n": 4}}, Cfg)
    assert api.config_differences(changed, {"run": {"plugin": "p"}, **api.unstructure(Cfg())}) == [("dataset.n", 4, 3)]


def _crafted_checkpoint(path, components):
    import torch

    from mlcore.training.checkpoint import checkpoint_payload

    payload = checkpoint_payload(model=torch.nn.Linear(1, 1), meta={"components": components})
    torch.save(payload, path)
    return path


def test_checkpoint_metadata_validated_before_anything_is_built(tmp_path, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("built a component from unvalidated checkpoint metadata")

    monkeypatch.setattr(api, "build", no_build)
    monkeypatch.setattr("mlcore.training.checkpoint.build_model", no_build)
    ok = {"model": {"name": "mlp", "config": {"hidden": 8, "seed": 2**40}}, "evaluator": {"name": "regression"}}
    cases = [
        ({"dataset": {"name": "sine", "config": {"num_samples": 10**9}}}, r"dataset\.num_samples=1000000000 is over"),
        ({"dataset": {"name": "sine", "config": {"num_samples": 1e9}}}, r"dataset\.num_samples=1000000000\.0"),
        ({"dataset": {"name": "sine", "config": {"sizes": [4, 10**12]}}}, r"dataset\.sizes\[1\]=1000000000000"),
        ({"dataset": {"name": "sine", "config": {"path": "x" * 5000}}}, r"dataset\.path is a string of 5000"),
        ({"dataset": {"name": "sine", "config": {"items": list(range(20_000))}}}, r"dataset\.items has 20000 items"),
        ({"dataset": {"config": {}}}, r"metadata for the dataset is malformed"),
    ]
    for i, (components, message) in enumerate(cases):
        path = _crafted_checkpoint(tmp_path / f"c{i}.pt", {**ok, **components})
        for call in (api.evaluate, api.export):
            with pytest.raises(CheckpointError, match=message):
                call(path)
        with pytest.raises(CheckpointError, match=message):
            api.rebuild_data(api.load_checkpoint(path), path)
    api.validate_checkpoint_meta(api.load_checkpoint(_crafted_checkpoint(tmp_path / "ok.pt", ok)), "ok.pt")


def test_continued_run_keeps_its_thread_count(toy, monkeypatch):
    import torch

    from mlcore import runs

    before = torch.get_num_threads()
    try:
        out = toy / "run"
        monkeypatch.setattr(runs, "default_threads", lambda: 1)
        api.run("toy", out=out)
        monkeypatch.setattr(runs, "default_threads", lambda: 2)  # the machine got quieter
        api.run(resume=out)  # continues with the first session's count: same summation order
        assert json.loads((out / "environment.json").read_text())["torch_threads"] == 1
        api.run("toy", out=toy / "fresh")
        assert json.loads((toy / "fresh" / "environment.json").read_text())["torch_threads"] == 2
    finally:
        torch.set_num_threads(before)


class _Twin:
    """A second plugin whose pipeline has the same name as the toy plugin's: ``toy``."""

    @staticmethod
    @mlcore.hookimpl
    def register_pipelines():
        return [
            mlcore.ComponentSpec(
                "toy", "toy_mlcore_plugin:ToyPipeline", "toy_mlcore_plugin:ToyConfig", profiles={"quick": {"steps": 7}}
            )
        ]


@pytest.fixture
def twins(toy, isolated_registry):
    module = importlib.import_module("toy_mlcore_plugin")
    isolated_registry({"toy": module.Plugin, "twin": _Twin})
    return toy


def test_the_same_pipeline_name_in_two_plugins_runs_each_plugins_own(twins):
    for plugin, steps in (("toy", 1), ("twin", 7)):
        result = api.run(plugin, pipeline="toy", out=twins / plugin, progress=False)
        assert json.loads((twins / plugin / "toy.json").read_text())["steps"] == steps
        assert (result.settings.plugin, result.settings.pipeline) == (plugin, "toy")
        run_table = tomllib.loads((twins / plugin / "config.toml").read_text())["run"]
        assert (run_table["plugin"], run_table["pipeline"]) == (plugin, "toy")
    assert api.resolve(pipeline="twin:toy").config.steps == 7  # PLUGIN:NAME picks the plugin too
    assert api.resolve("twin", pipeline="twin:toy").settings.plugin == "twin"
    other = api.resolve(pipeline="other")  # a bare name only one plugin has picks that plugin
    assert (other.settings.plugin, other.settings.pipeline) == ("toy", "other")


def test_an_ambiguous_bare_pipeline_lists_the_choices(twins):
    with pytest.raises(ConfigError) as info:
        api.resolve(pipeline="toy")
    assert str(info.value) == (
        "--pipeline toy: pipeline 'toy' is registered by 2 plugins; choose one: toy:toy, twin:toy "
        "(or pass --plugin with --pipeline)"
    )
    with pytest.raises(ConfigError, match="--pipeline twin:toy: names plugin 'twin', but --plugin is 'toy'"):
        api.resolve("toy", pipeline="twin:toy")
    with pytest.raises(ConfigError, match="no plugin given"):
        api.resolve()


def test_a_run_directory_written_before_pipelines_were_scoped_resumes(twins):
    """Run directories record ``[run] plugin`` and the bare ``pipeline`` name; that still finds the pipeline."""
    run = twins / "old"
    (run / "checkpoints").mkdir(parents=True)
    # config.toml as mlcore 0.x wrote it before the change (the same [run] table; no plugin:name anywhere)
    (run / "config.toml").write_text(
        "steps = 7\nsleep = 0.0\nblob = 0\n\n"
        '[run]\nplugin = "twin"\npipeline = "toy"\nprofile = "quick"\nseed = 0\ndevice = "auto"\nthreads = 1\n\n'
        '[section]\nsize = 4\nname = "x"\n\n[trainer]\nepochs = 1\nbudget = 100\n'
    )
    (run / "checkpoints" / "last.pt").write_text("epochs 1")
    (run / "summary.json").write_text('{"status": "interrupted"}')
    result = api.run(resume=run, progress=False)
    assert json.loads((run / "toy.json").read_text())["steps"] == 7  # twin's toy, not toy's toy
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert (result.settings.plugin, result.settings.pipeline) == ("twin", "toy")


def test_run_options_carry_a_run_to_resolve_run_and_the_command_line(toy):
    out = toy / "opts"
    opts = api.RunOptions("toy", "other", "full", None, ["steps=5"], out, "cpu", 3, 1)
    assert opts.cli_args() == [
        "--plugin", "toy", "--pipeline", "other", "--profile", "full", "--out", str(out),
        "--device", "cpu", "--seed", "3", "--threads", "1", "--set", "steps=5",
    ]  # fmt: skip
    direct = api.resolve(
        "toy", pipeline="other", profile="full", overrides=["steps=5"], seed=3, device="cpu", threads=1
    )
    assert opts.resolve().to_document() == direct.to_document()
    result = opts.run(progress=False)
    assert result.out_dir == out and json.loads((out / "toy.json").read_text())["steps"] == 5
    assert (result.settings.pipeline, result.settings.seed) == ("other", 3)
    with pytest.raises(ConfigError, match="no command-line form"):
        api.RunOptions("toy", config={"steps": 2}).cli_args()
