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
    ],
    ids=["missing-dependency", "raises-on-import", "incompatible-api", "hook-raises", "duplicate-name", "bad-return"],
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


def test_builtins_register_through_hooks():
    reg = Registry.from_modules({})
    assert {s.name for s in reg.components("loss")} >= {"mse", "mae", "huber", "cross_entropy", "hybrid"}
    assert reg.get("trainer", "supervised").plugin == "mlcore"
    assert {s.name for s in reg.components("evaluator")} >= {"regression", "classification"}


def test_api_compatibility():
    assert api_compatible(">=1.0,<2", "1.0")
    assert not api_compatible(">=1.1", "1.0")
    assert not api_compatible("not a specifier", "1.0")
