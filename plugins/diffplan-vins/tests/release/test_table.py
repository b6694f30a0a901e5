"""The release table: unique names, each entry's run config resolves for both profiles."""

from __future__ import annotations

import pytest

from mlcore.api import resolve
from mlcore.errors import ConfigError
from mlcore.registry import get_registry
from mlcore_diffplan_vins.release.table import CATEGORIES, RELEASE_TABLE, entry_named


def test_names_are_unique_and_categories_known() -> None:
    names = [e.name for e in RELEASE_TABLE]
    assert len(names) == len(set(names))
    assert {e.category for e in RELEASE_TABLE} == set(CATEGORIES)
    assert {e.pipeline for e in RELEASE_TABLE if e.category == "grid"} == {"single"}
    assert {e.pipeline for e in RELEASE_TABLE if e.category != "grid"} == {"graph-single"}
    with pytest.raises(ConfigError, match=r"'VIN_maze99' is not in the release table \(entries: VIN_maze15, "):
        entry_named("VIN_maze99")


@pytest.mark.parametrize("entry", [e for e in RELEASE_TABLE if e.category == "grid"], ids=lambda e: e.name)
@pytest.mark.parametrize("profile", ["quick", "full"])
def test_grid_entries_resolve_to_their_model(entry: object, profile: str) -> None:
    from mlcore_diffplan_vins.pipeline import resolve_model_name

    e = entry_named(getattr(entry, "name"))  # noqa: B009 - parametrised ids need the object
    overrides = [*e.overrides, *(e.quick if profile == "quick" else ())]
    run = resolve("diffplan-vins", pipeline=e.pipeline, profile=profile, overrides=overrides, seed=e.seed)
    built = run.spec.build(run.config).config
    assert built.model.name == resolve_model_name(e.algorithm) and built.notes == e.notes
    for item in e.quick if profile == "quick" else ():  # the small-network overrides reach the model config
        key, value = item.split("=")
        assert getattr(built.model.config, key.split(".")[1]) == int(value)
    if profile == "full":  # the research setup
        assert (run.config.dataset.num, run.config.trainer.epochs, run.config.trainer.batch_size) == (10000, 100, 32)
    assert run.settings.seed == 42


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_graph_entries_resolve_when_graph_single_is_installed(profile: str) -> None:
    names = {s.name for s in get_registry().pipelines("diffplan-vins")}
    if "graph-single" not in names:
        pytest.skip("the graph planners' pipeline graph-single is not installed in this branch")
    for e in RELEASE_TABLE:
        if e.pipeline != "graph-single":
            continue
        run = resolve("diffplan-vins", pipeline=e.pipeline, profile=profile, overrides=list(e.overrides))
        built = run.spec.build(run.config).config
        assert f"model.name={built.model.name}" in e.overrides and f"dataset.name={built.dataset.name}" in e.overrides
        assert built.dataset.config.continuous is (e.category == "continuous")
        if profile == "full":
            assert (built.dataset.config.num, built.trainer.epochs, built.trainer.batch_size) == (10000, 100, 32)
