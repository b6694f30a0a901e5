"""Install checks across the workspace: every installed plugin loads, declares a compatible API,
and every component it registers has an importable, documented config with working defaults."""

from __future__ import annotations

from importlib import metadata

import attrs
import pytest

from mlcore.config import describe_fields, structure, unstructure
from mlcore.registry import ENTRY_POINT_GROUP, get_registry

REGISTRY = get_registry(refresh=True)
INSTALLED = sorted(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
SPECS = REGISTRY.components()


@pytest.mark.parametrize("plugin", INSTALLED)
def test_installed_plugin_loads(plugin):
    info = REGISTRY.plugins[plugin]
    assert info.status == "ok", f"{plugin}: {info.reason}"
    assert info.api, f"{plugin} should declare MLCORE_API"
    assert info.components, f"{plugin} registers nothing"


@pytest.mark.parametrize("plugin", INSTALLED)
def test_plugin_pipelines_have_quick_and_full_profiles(plugin):
    for spec in REGISTRY.pipelines(plugin):
        assert {"quick", "full"} <= set(spec.profiles), f"{spec.qualified_name} lacks quick/full profiles"


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.plugin}:{s.qualified_name}" for s in SPECS])
def test_component_config_defaults_round_trip(spec):
    assert spec.summary, f"{spec.qualified_name} has no summary"
    cls = spec.config_class()
    if cls is None:
        return
    assert cls.__doc__, f"{spec.config} has no docstring"
    default = cls()
    assert structure(cls, unstructure(default)) == default
    assert describe_fields(cls)
    assert attrs.has(cls)
