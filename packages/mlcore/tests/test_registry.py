"""Plugin discovery and isolation: every failure mode is reported and skipped, others keep working."""

from __future__ import annotations

import json

import pytest

from mlcore import ComponentSpec, hookimpl
from mlcore.errors import ComponentNotFoundError
from mlcore.registry import Registry, api_compatible

GOOD = """
from mlcore import ComponentSpec, hookimpl
MLCORE_API = ">=1.0,<2"

@hookimpl
def register_models():
    return [ComponentSpec("good_model", "good_plugin:Model", summary="a good model")]
"""


def _plugins(result) -> dict[str, dict]:
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


def test_entry_point_plugin_is_discovered(fake_site, cli):
    site = fake_site("good", GOOD)
    plugins = _plugins(cli(["plugins", "--json"], pythonpath=site))
    assert plugins["good"]["status"] == "ok"
    assert plugins["good"]["components"] == {"model": ["good_model"]}
    assert plugins["good"]["version"] == "0.1.0"
    assert plugins["mlcore"]["status"] == "ok"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import not_a_real_module_xyz\n", "import failed: ModuleNotFoundError"),
        ("raise RuntimeError('boom at import')\n", "import failed: RuntimeError: boom at import"),
        ("MLCORE_API = '>=2.0'\n", "needs mlcore plugin API >=2.0"),
        (
            "from mlcore import hookimpl\n@hookimpl\ndef register_models():\n    raise ValueError('hook exploded')\n",
            "register_models raised ValueError: hook exploded",
        ),
        (
            "from mlcore import ComponentSpec, hookimpl\n@hookimpl\ndef register_losses():\n"
            "    return [ComponentSpec('mse', 'x:y')]\n",
            "duplicate loss 'mse' (already registered by plugin 'mlcore')",
        ),
        (
            "from mlcore import hookimpl\n@hookimpl\ndef register_models():\n    return ['not a spec']\n",
            "register_models returned str, expected ComponentSpec",
        ),
        ("import sys\nsys.exit(3)\n", "import failed: SystemExit: 3"),
        (
            "from mlcore import hookimpl\n@hookimpl\ndef register_models():\n    return 5\n",
            "register_models returned int, expected a list of ComponentSpec",
        ),
        (
            "import sys\nfrom mlcore import hookimpl\n@hookimpl\ndef register_losses():\n    sys.exit(4)\n",
            "register_losses raised SystemExit: 4",
        ),
        (
            "from mlcore import ComponentSpec, hookimpl\n@hookimpl\ndef register_models():\n"
            "    return [ComponentSpec('m', 'no_colon')]\n",
            "register_models returned 'm' with target='no_colon'",
        ),
    ],
    ids=[
        "missing-dependency",
        "raises-on-import",
        "incompatible-api",
        "hook-raises",
        "duplicate-name",
        "bad-return",
        "sys-exit-on-import",
        "hook-returns-int",
        "hook-sys-exit",
        "bad-target",
    ],
)
def test_broken_plugin_is_reported_and_skipped(fake_site, cli, source, reason):
    fake_site("good", GOOD)
    site = fake_site("broken", source)
    result = cli(["plugins", "--json"], pythonpath=site)
    plugins = _plugins(result)
    assert plugins["broken"]["status"] == "failed"
    assert reason in plugins["broken"]["reason"]
    assert plugins["broken"]["components"] == {}
    assert plugins["good"]["status"] == "ok"
    # other commands keep working and do not list the broken plugin's components
    listing = cli(["list", "--json"], pythonpath=site)
    assert listing.returncode == 0, listing.stderr
    names = {row["name"] for row in json.loads(listing.stdout)}
    assert "good_model" in names
    assert "mse" in names
    helped = cli(["--help"], pythonpath=site)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: mlcore" in helped.stdout


def test_human_listing_shows_failure_reason(fake_site, cli):
    site = fake_site("broken", "import not_a_real_module_xyz\n")
    result = cli(["plugins"], pythonpath=site)
    assert result.returncode == 0
    assert "broken 0.1.0  [FAILED]" in result.stdout
    assert "reason: import failed: ModuleNotFoundError" in result.stdout


def test_mlcore_plugins_env_selects(fake_site, cli):
    fake_site("good", GOOD)
    site = fake_site("other", GOOD.replace("good_model", "other_model"))
    only_good = _plugins(cli(["plugins", "--json"], pythonpath=site, env={"MLCORE_PLUGINS": "good"}))
    assert only_good["good"]["status"] == "ok"
    assert only_good["other"]["status"] == "disabled"
    none = _plugins(cli(["plugins", "--json"], pythonpath=site, env={"MLCORE_PLUGINS": ""}))
    assert {n for n, p in none.items() if p["status"] == "ok"} == {"mlcore"}
    missing = _plugins(cli(["plugins", "--json"], pythonpath=site, env={"MLCORE_PLUGINS": "nope"}))
    assert missing["nope"]["status"] == "failed"
    assert "not installed" in missing["nope"]["reason"]
    # a disabled plugin is reported as disabled, with the reason, wherever it is asked for
    assert only_good["other"]["reason"] == "not selected by MLCORE_PLUGINS"
    listed = cli(["list", "--plugin", "other"], pythonpath=site, env={"MLCORE_PLUGINS": "good"})
    assert listed.returncode == 2
    assert listed.stderr.strip() == (
        "error: plugin 'other' is installed but disabled (not selected by MLCORE_PLUGINS); "
        "add it to MLCORE_PLUGINS or unset MLCORE_PLUGINS"
    )


class _Dup:
    @staticmethod
    @hookimpl
    def register_models():
        return [ComponentSpec("m", "x:y"), ComponentSpec("m", "x:z")]


class _Good:
    @staticmethod
    @hookimpl
    def register_models():
        return [ComponentSpec("m2", "x:y", summary="fine")]


def test_duplicate_within_one_plugin_and_lookup_errors():
    reg = Registry.from_modules({"dup": _Dup, "good": _Good})
    assert reg.plugins["dup"].status == "failed"
    assert "duplicate model 'm'" in reg.plugins["dup"].reason
    assert reg.get("model", "m2").plugin == "good"
    assert reg.get("model", "m2").kind == "model"
    with pytest.raises(ComponentNotFoundError, match=r"no model named 'm22'; did you mean 'm2'\?"):
        reg.get("model", "m22")
    with pytest.raises(ComponentNotFoundError, match="unknown component kind 'widget'"):
        reg.get("widget", "m2")
    with pytest.raises(ComponentNotFoundError, match="plugin 'dup' is failed"):
        reg.plugin("dup")


class _Raises:
    @staticmethod
    @hookimpl
    def register_models():
        raise RuntimeError("boom")


def test_a_failed_plugin_is_unregistered_from_pluggy():
    reg = Registry.from_modules({"bad": _Raises, "dup": _Dup, "good": _Good})
    assert reg.plugins["bad"].status == "failed" and "register_models raised" in reg.plugins["bad"].reason
    assert not reg.pm.has_plugin("bad") and not reg.pm.has_plugin("dup")  # its other hooks never run
    assert reg.pm.has_plugin("good")


def test_builtins_register_through_hooks():
    reg = Registry.from_modules({})
    assert {s.name for s in reg.components("loss")} >= {"mse", "mae", "huber", "cross_entropy", "hybrid"}
    assert reg.get("trainer", "supervised").plugin == "mlcore"
    assert {s.name for s in reg.components("evaluator")} >= {"regression", "classification"}


def test_api_compatibility():
    assert api_compatible(">=1.0,<2", "1.0")
    assert not api_compatible(">=1.1", "1.0")
    assert api_compatible("not a specifier", "1.0") is False  # a bool, not a falsy None


# --------------------------------------------------------------------------- name clashes


def _dist(site, dist: str, entry_point: str, module: str, source: str) -> None:
    """A fake installed distribution ``dist`` whose ``mlcore.plugins`` entry point ``entry_point`` is ``module``."""
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[mlcore.plugins]\n{entry_point} = {module}\n", encoding="utf-8")


IMPOSTOR = """
from mlcore import ComponentSpec, hookimpl

@hookimpl
def register_models():
    return [ComponentSpec("good_model", "impostor_plugin:Evil", summary="not the real one")]
"""


def test_two_distributions_pointing_at_the_same_module_are_still_a_clash(fake_site, cli):
    site = fake_site("good", GOOD)
    _dist(site, "aaa-fork", "good", "good_plugin", GOOD)  # another distribution, the same entry point value
    plugins = _plugins(cli(["plugins", "--json"], pythonpath=site))
    assert plugins["good"]["status"] == "failed"
    assert "plugin name 'good' is claimed by 2 distributions" in plugins["good"]["reason"]


def test_impostor_reusing_a_plugin_name_is_refused_with_the_real_one(fake_site, cli):
    site = fake_site("good", GOOD)
    _dist(site, "aaa-impostor", "good", "impostor_plugin", IMPOSTOR)  # sorts before mlcore-good
    plugins = _plugins(cli(["plugins", "--json"], pythonpath=site))
    assert plugins["good"]["status"] == "failed"
    reason = plugins["good"]["reason"]
    assert "plugin name 'good' is claimed by 2 distributions" in reason
    assert "aaa-impostor (impostor_plugin)" in reason and "mlcore-good (good_plugin)" in reason
    listing = cli(["list", "model", "--json"], pythonpath=site)
    assert "good_model" not in {row["name"] for row in json.loads(listing.stdout)}
    # the user picks one by distribution name
    chosen = _plugins(cli(["plugins", "--json"], pythonpath=site, env={"MLCORE_PLUGINS": "mlcore-good"}))
    assert chosen["good"]["status"] == "ok"
    assert chosen["good"]["distribution"] == "mlcore-good"
    shown = cli(["show", "model", "good_model", "--json"], pythonpath=site, env={"MLCORE_PLUGINS": "mlcore-good"})
    assert json.loads(shown.stdout)["target"] == "good_plugin:Model"


class _ClaimsM2:
    @staticmethod
    @hookimpl
    def register_models():
        return [ComponentSpec("m2", "aaa:Impostor"), ComponentSpec("own", "aaa:Own")]


def test_component_name_claimed_by_two_plugins_is_refused_for_both_in_any_order():
    for order in (("aaa", "good"), ("good", "aaa")):
        modules = {name: {"aaa": _ClaimsM2, "good": _Good}[name] for name in order}
        reg = Registry.from_modules(modules)
        assert reg.plugins["aaa"].status == "ok" and reg.plugins["good"].status == "ok"
        with pytest.raises(ComponentNotFoundError, match=r"model/m2 is registered by plugins '\w+' and '\w+'"):
            reg.get("model", "m2")
        assert reg.get("model", "own").plugin == "aaa"  # the rest of each plugin keeps working
        for name in order:
            assert any("model/m2" in note for note in reg.plugins[name].notes), name
            assert "m2" not in {c.name for c in reg.plugins[name].components}


class _ClaimsM2Commands(_ClaimsM2):
    @staticmethod
    @hookimpl
    def register_commands(cli):
        raise RuntimeError("no")


def test_a_clash_ends_when_one_claimant_fails():
    import click

    reg = Registry.from_modules({"aaa": _ClaimsM2Commands, "good": _Good})
    reg.call_commands(click.Group())
    assert reg.plugins["aaa"].status == "failed"
    assert reg.get("model", "m2").plugin == "good"
    assert reg.plugins["good"].notes == []


def test_a_disabled_plugin_is_never_reported_as_not_installed(monkeypatch):
    from mlcore.errors import CheckpointError
    from mlcore.registry import PluginInfo, set_registry
    from mlcore.training.checkpoint import build_model

    reg = Registry.from_modules({"good": _Good})
    reg.plugins["off"] = PluginInfo("off", "off_plugin", status="disabled", reason="not selected by MLCORE_PLUGINS")
    assert reg.availability("good") == "loaded"
    assert reg.availability("ghost") == "not installed (`pip install mlcore-ghost`)"
    assert reg.availability("off") == (
        "installed but disabled (not selected by MLCORE_PLUGINS); add it to MLCORE_PLUGINS or unset MLCORE_PLUGINS"
    )
    restore = set_registry(reg)
    try:
        ckpt = {"meta": {"plugin": "off", "components": {"model": {"name": "offmodel"}}}, "path": "x.pt"}
        with pytest.raises(CheckpointError) as info:
            build_model(ckpt)
        assert str(info.value) == (
            "checkpoint x.pt needs model 'offmodel' from plugin 'off', which is installed but disabled "
            "(not selected by MLCORE_PLUGINS); add it to MLCORE_PLUGINS or unset MLCORE_PLUGINS"
        )
    finally:
        restore()


# --------------------------------------------------------------------------- pipelines are scoped by plugin


class _ComparesA:
    @staticmethod
    @hookimpl
    def register_pipelines():
        return [ComponentSpec("compare", "aaa:Compare"), ComponentSpec("only_a", "aaa:OnlyA")]

    @staticmethod
    @hookimpl
    def register_models():
        return [ComponentSpec("shared_model", "aaa:Model")]


class _ComparesB:
    @staticmethod
    @hookimpl
    def register_pipelines():
        return [ComponentSpec("compare", "bbb:Compare"), ComponentSpec("train", "bbb:Train")]

    @staticmethod
    @hookimpl
    def register_models():
        return [ComponentSpec("shared_model", "bbb:Model")]


def test_the_same_pipeline_name_in_two_plugins_is_no_clash_in_any_order():
    for order in (("aaa", "bbb"), ("bbb", "aaa")):
        reg = Registry.from_modules({name: {"aaa": _ComparesA, "bbb": _ComparesB}[name] for name in order})
        assert reg.get("pipeline", "aaa:compare").target == "aaa:Compare"
        assert reg.get("pipeline", "bbb:compare").target == "bbb:Compare"
        assert [s.name for s in reg.pipelines("aaa")] == ["compare", "only_a"]
        assert [s.name for s in reg.pipelines("bbb")] == ["compare", "train"]
        assert reg.get("pipeline", "only_a").plugin == "aaa"  # a bare name that one plugin has
        assert reg.get("pipeline", "mlcore:train").plugin == "mlcore"  # a plugin may reuse a built-in pipeline name
        with pytest.raises(ComponentNotFoundError) as info:
            reg.get("pipeline", "compare")
        assert str(info.value) == (
            "pipeline 'compare' is registered by 2 plugins; choose one: aaa:compare, bbb:compare "
            "(or pass --plugin with --pipeline)"
        )
        # other kinds keep the one global namespace and the clash rule
        with pytest.raises(ComponentNotFoundError, match="model/shared_model is registered by plugins"):
            reg.get("model", "shared_model")
        for name in order:
            assert reg.plugins[name].status == "ok"
            assert [n.split(" ")[0] for n in reg.plugins[name].notes] == ["model/shared_model"]
        listed = [(s.name, s.plugin) for s in reg.components("pipeline")]
        assert ("compare", "aaa") in listed and ("compare", "bbb") in listed


def test_a_scoped_pipeline_name_errors_name_the_plugin():
    reg = Registry.from_modules({"aaa": _ComparesA})
    with pytest.raises(ComponentNotFoundError, match=r"plugin 'aaa' has no pipeline named 'compar'.*compare"):
        reg.get("pipeline", "aaa:compar")
    with pytest.raises(ComponentNotFoundError, match="no plugin named 'zzz'"):
        reg.get("pipeline", "zzz:compare")
    with pytest.raises(ComponentNotFoundError, match=r"no pipeline named 'nope' \(available: compare, only_a, train\)"):
        reg.get("pipeline", "nope")


def test_a_failed_plugin_drops_its_scoped_pipelines():
    reg = Registry.from_modules({"aaa": _ComparesA, "bbb": _ComparesB})
    reg._fail_plugin("bbb", "test")
    assert reg.get("pipeline", "compare").plugin == "aaa"
    assert [s.plugin for s in reg.components("pipeline") if s.name == "compare"] == ["aaa"]
