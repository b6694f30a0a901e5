"""Component specs: import paths resolved lazily, every failure one line naming the plugin and module."""

from __future__ import annotations

import sys

import pytest

from mlcore.components import KINDS, ComponentSpec, import_object
from mlcore.errors import ConfigError, PluginError
from mlcore.registry import KIND_HOOKS


def _module(tmp_path, monkeypatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_kind_hooks_are_derived_from_kinds() -> None:
    hooks = ["datasets", "models", "losses", "trainers", "evaluators", "pipelines", "trackers", "callbacks"]
    assert {f"register_{h}": kind for h, kind in zip(hooks, KINDS, strict=True)} == KIND_HOOKS


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("raise RuntimeError('boom at import')\n", "raised RuntimeError: boom at import"),
        ("import sys\nsys.exit(2)\n", "raised SystemExit: 2"),
        ("import not_a_module_xyz\n", "cannot import 'comp_mod_{i}'"),
    ],
    ids=["raises", "exits", "missing-dependency"],
)
def test_a_component_module_failing_at_import_is_one_line(tmp_path, monkeypatch, source, detail) -> None:
    i = abs(hash(source)) % 10**6
    _module(tmp_path, monkeypatch, f"comp_mod_{i}", source)
    spec = ComponentSpec("broken", f"comp_mod_{i}:Model", f"comp_mod_{i}:Config", kind="model", plugin="acme")
    for call in (spec.load, spec.config_class, spec.build):
        with pytest.raises(PluginError) as info:
            call()
        text = str(info.value)
        assert text.startswith("model/broken of plugin 'acme': ")
        assert detail.format(i=i) in text
        assert f"comp_mod_{i}" in text and "\n" not in text


def test_missing_attribute_and_bad_paths() -> None:
    with pytest.raises(PluginError, match=r"'mlcore.errors' has no attribute 'Nope'"):
        import_object("mlcore.errors:Nope")
    with pytest.raises(PluginError, match="invalid import path 'no_colon'"):
        import_object("no_colon")


def test_make_config_is_strict_and_names_the_key(tmp_path, monkeypatch) -> None:
    _module(tmp_path, monkeypatch, "cfg_mod", "import attrs\n@attrs.define\nclass Cfg:\n    depth: int = 2\n")
    spec = ComponentSpec("deep", "cfg_mod:Cfg", "cfg_mod:Cfg", kind="model")
    assert spec.make_config({"depth": "3"}).depth == 3
    with pytest.raises(ConfigError, match=r"unknown key 'model.width'"):
        spec.make_config({"width": 1}, where="model.")
    plain = ComponentSpec("plain", "cfg_mod:Cfg", kind="loss")
    with pytest.raises(ConfigError, match="loss/plain takes no options"):
        plain.make_config({"x": 1})
