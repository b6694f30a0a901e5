"""Strict config structuring, validators, overrides and files."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Literal

import attrs
import pytest

from mlcore import ComponentSpec, hookimpl
from mlcore.config import (
    ComponentConfig,
    apply_overrides,
    component_field,
    deep_merge,
    describe_fields,
    dumps_toml,
    free_tables,
    in_range,
    layer_configs,
    load_file,
    non_negative,
    one_of,
    parse_value,
    positive,
    save_toml,
    structure,
    unstructure,
)
from mlcore.errors import ConfigError


@attrs.define
class Inner:
    hidden: int = attrs.field(default=32, validator=positive)
    kind: str = attrs.field(default="lstm", validator=one_of("lstm", "gru"))


@attrs.define
class Outer:
    lr: float = 1e-3
    sizes: tuple[int, ...] = (1, 2)
    mode: Literal["a", "b"] = "a"
    flag: bool = False
    path: Path | None = None
    model: Inner = attrs.field(factory=Inner)


def test_structure_converts_types_and_nests():
    cfg = structure(Outer, {"lr": 1, "sizes": [3, 4], "flag": "true", "path": "x.npz", "model": {"hidden": 8.0}})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.sizes == (3, 4)
    assert cfg.flag is True
    assert cfg.path == Path("x.npz")
    assert cfg.model == Inner(hidden=8, kind="lstm")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": {"hiden": 3}}, "unknown key 'model.hiden'; did you mean 'hidden'? (allowed: hidden, kind)"),
        ({"lrr": 3}, "unknown key 'lrr'; did you mean 'lr'?"),
        ({"model": {"kind": "rnn"}}, "model.kind='rnn' is not allowed (allowed: lstm, gru)"),
        ({"model": {"hidden": -1}}, "model.hidden=-1 is out of range (allowed: (0, inf])"),
        ({"model": {"hidden": 1.5}}, "model.hidden=1.5 is not an integer"),
        ({"mode": "c"}, "mode='c' is not allowed (allowed: a, b)"),
        ({"lr": "fast"}, "lr='fast' is not a number"),
        ({"flag": "maybe"}, "flag='maybe' is not a boolean"),
        ({"model": 3}, "model: expected a table, got 3"),
        ({"sizes": "12"}, "sizes: expected a list"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        structure(Outer, data)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_unstructure_round_trip_through_toml(tmp_path):
    cfg = Outer(lr=0.5, sizes=(7,), path=Path("a/b"), model=Inner(hidden=4, kind="gru"))
    save_toml(tmp_path / "c.toml", unstructure(cfg))
    again = structure(Outer, load_file(tmp_path / "c.toml"))
    assert again == cfg
    assert "path" not in unstructure(Outer())  # None is omitted (TOML has no null)


def test_overrides_parse_toml_values():
    data = apply_overrides(
        {"model": {"hidden": 3}}, ["model.hidden=64", "lr=1e-4", "sizes=[1, 2, 3]", "model.kind=gru"]
    )
    assert data == {"model": {"hidden": 64, "kind": "gru"}, "lr": 1e-4, "sizes": [1, 2, 3]}
    assert parse_value("true") is True
    assert parse_value("hello") == "hello"
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="'lr' is a value, not a table"):
        apply_overrides({"lr": 1}, ["lr.x=2"])


def test_deep_merge_replaces_component_when_name_changes():
    base = {"trainer": {"name": "supervised", "epochs": 3}, "x": {"a": 1, "b": 2}}
    merged = deep_merge(base, {"trainer": {"name": "sb3", "steps": 10}, "x": {"b": 3}})
    assert merged == {"trainer": {"name": "sb3", "steps": 10}, "x": {"a": 1, "b": 3}}
    assert deep_merge(base, {"trainer": {"epochs": 9}})["trainer"] == {"name": "supervised", "epochs": 9}


def test_load_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*missing\.toml"):
        load_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = = 1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: invalid TOML"):
        load_file(bad)


def test_yaml_config(tmp_path):
    pytest.importorskip("yaml")
    yml = tmp_path / "c.yaml"
    yml.write_text("lr: 0.1\nmodel:\n  hidden: 5\n")
    assert structure(Outer, load_file(yml)).model.hidden == 5
    yml.write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: the top level must be a mapping"):
        load_file(yml)


def test_yaml_without_pyyaml_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    yml = tmp_path / "c.yml"
    yml.write_text("lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yml: reading YAML needs PyYAML \(`pip install pyyaml`\)"):
        load_file(yml)


def test_describe_fields_flattens_nested_defaults():
    rows = {r["name"]: r for r in describe_fields(Outer)}
    assert rows["model.hidden"]["default"] == 32
    assert rows["lr"]["type"] == "float"
    assert "lr = 0.001" in dumps_toml(unstructure(Outer()))


# --------------------------------------------------------------------------- layering


def _default_variants() -> dict[str, dict[str, int]]:
    return {"plain": {}, "a": {"x": 1}, "b": {"x": 2}}


@attrs.define
class Sweep:
    opts: dict[str, int] = attrs.field(factory=lambda: {"lr": 1})


@attrs.define
class Ablation:
    variants: dict[str, dict[str, int]] = attrs.field(factory=_default_variants)
    sweep: Sweep = attrs.field(factory=Sweep)
    maybe: dict[str, int] | None = None
    seeds: list[int] = attrs.field(factory=lambda: [0, 1])


def test_free_tables_are_the_dict_typed_fields_nested_included() -> None:
    assert sorted(free_tables(Ablation)) == [("maybe",), ("sweep", "opts"), ("variants",)]


def test_a_profile_or_file_replaces_a_free_table_and_set_merges_into_it() -> None:
    # a profile's variants replace the defaults (no silent extra variants)
    out = layer_configs(Ablation, {"variants": {"plain": {}, "c": {"x": 3}}}, {})
    assert out["variants"] == {"plain": {}, "c": {"x": 3}}
    # a config file replaces the profile's table in turn
    out = layer_configs(Ablation, {"variants": {"plain": {}, "c": {"x": 3}}}, {"variants": {"d": {"x": 4}}})
    assert out["variants"] == {"d": {"x": 4}}
    # --set merges one entry into whatever the levels below produced
    out = layer_configs(Ablation, {"variants": {"plain": {}, "c": {"x": 3}}}, {}, ["variants.c.x=5"])
    assert out["variants"] == {"plain": {}, "c": {"x": 5}}
    out = layer_configs(Ablation, {}, {}, ["variants.a.x=9"])
    assert out["variants"] == {"plain": {}, "a": {"x": 9}, "b": {"x": 2}}
    # nested free tables and ordinary tables/values
    out = layer_configs(Ablation, {"sweep": {"opts": {"wd": 2}}}, {"seeds": [3]})
    assert out["sweep"] == {"opts": {"wd": 2}} and out["seeds"] == [3]
    assert structure(Ablation, out).sweep.opts == {"wd": 2}


# --------------------------------------------------------------------------- renamed tables


@attrs.define
class DataSection:
    seed: int = 0
    size: int = 5
    path: str = ""


@attrs.define
class Renamed:
    dataset: DataSection = attrs.field(factory=DataSection, metadata={"mlcore_old_names": ("data",)})
    lr: float = 1e-3


def _renamed_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is now" in r.getMessage()]


def test_old_table_name_reads_as_the_field_with_one_warning(caplog) -> None:
    with caplog.at_level("WARNING", logger="mlcore.config"):
        cfg = structure(Renamed, {"data": {"seed": 3}})
    assert cfg.dataset == DataSection(seed=3)
    assert _renamed_warnings(caplog) == ["config: [data] is now [dataset]; the old name is still read"]


def test_old_table_name_in_every_layer_keeps_precedence_and_warns_once(caplog) -> None:
    with caplog.at_level("WARNING", logger="mlcore.config"):
        # profile (old) < file (new) < --set (old)
        out = layer_configs(Renamed, {"data": {"seed": 1, "size": 7}}, {"dataset": {"seed": 2}}, ["data.path=x"])
    assert out["dataset"] == {"seed": 2, "size": 7, "path": "x"}
    assert "data" not in out
    assert len(_renamed_warnings(caplog)) == 1
    # file (old) beats profile (new); --set (old) beats the file; defaults survive the merge
    out = layer_configs(Renamed, {"dataset": {"seed": 1}}, {"data": {"seed": 2}})
    assert out["dataset"] == {"seed": 2, "size": 5, "path": ""}
    out = layer_configs(Renamed, {}, {"dataset": {"seed": 2}}, ["data.seed=3"])
    assert structure(Renamed, out).dataset.seed == 3
    # a profile in the old name does not beat a file in the new one
    out = layer_configs(Renamed, {"data": {"seed": 1}}, {"dataset": {"seed": 2}})
    assert out["dataset"]["seed"] == 2


def test_giving_both_names_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"both \[data\] and \[dataset\] are given"):
        structure(Renamed, {"data": {"seed": 1}, "dataset": {"seed": 2}})
    with pytest.raises(ConfigError, match=r"^c\.toml: both \[data\] and \[dataset\]"):
        layer_configs(Renamed, {}, {"data": {}, "dataset": {}}, document_name="c.toml")
    with pytest.raises(ConfigError, match=r"--set 'data.seed=1' and --set 'dataset.seed=2' name the same table"):
        layer_configs(Renamed, {}, {}, ["data.seed=1", "dataset.seed=2"])


def test_override_value_keeps_every_equals_after_the_first() -> None:
    # split at the first '=': a last-'=' split would make the key 'path=/a'
    out = apply_overrides({}, ["data.path=/a=b", "x=="])
    assert out == {"data": {"path": "/a=b"}, "x": "="}
    assert layer_configs(Renamed, {}, {}, ["data.path=/a=b"])["dataset"]["path"] == "/a=b"


def test_apply_overrides_leaves_the_callers_dict_unchanged() -> None:
    data = {"model": {"hidden": 3, "layers": {"n": 1}}}
    out = apply_overrides(data, ["model.hidden=5", "model.layers.n=2"])
    assert data == {"model": {"hidden": 3, "layers": {"n": 1}}}
    assert out["model"] == {"hidden": 5, "layers": {"n": 2}}


def test_non_utf8_config_file_is_one_line_naming_the_file(tmp_path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_file(bad)
    assert str(info.value) == f"{bad}: not UTF-8 text (byte 0xe9 at offset 11); save it as UTF-8"


# --------------------------------------------------------------------------- switching components


@attrs.define
class AlphaConfig:
    a: int = 1
    shared: int = 0


@attrs.define
class BetaConfig:
    b: int = 2
    shared: int = 0


class _Pair:
    @staticmethod
    @hookimpl
    def register_models():
        return [
            ComponentSpec("alpha", "fake_pair:Model", "fake_pair:AlphaConfig"),
            ComponentSpec("beta", "fake_pair:Model", "fake_pair:BetaConfig"),
        ]


@attrs.define
class PairPipeline:
    model: ComponentConfig = component_field("model", "alpha")


@pytest.fixture
def pair(monkeypatch, isolated_registry):
    module = types.ModuleType("fake_pair")
    module.AlphaConfig, module.BetaConfig, module.Model = AlphaConfig, BetaConfig, object
    monkeypatch.setitem(sys.modules, "fake_pair", module)
    isolated_registry({"pair": _Pair})


def test_switching_a_component_by_set_drops_the_lower_layers_options(pair) -> None:
    profile = {"model": {"a": 5, "shared": 7}}  # alpha-specific options from the profile
    out = layer_configs(PairPipeline, profile, {}, ["model.name=beta"])
    assert out["model"] == {"name": "beta"}
    assert structure(PairPipeline, out).model.config == BetaConfig()
    # options given with the switch, at the same layer, are kept whatever their order
    out = layer_configs(PairPipeline, profile, {}, ["model.b=9", "model.name=beta", "model.shared=3"])
    assert structure(PairPipeline, out).model.config == BetaConfig(b=9, shared=3)
    # a file switching the component drops the profile's options and keeps its own
    out = layer_configs(PairPipeline, profile, {"model": {"name": "beta", "b": 4}})
    assert structure(PairPipeline, out).model.config == BetaConfig(b=4)
    # re-stating the same name keeps everything
    out = layer_configs(PairPipeline, profile, {}, ["model.name=alpha"])
    assert structure(PairPipeline, out).model.config == AlphaConfig(a=5, shared=7)


def test_component_sections_still_import_from_config() -> None:
    from mlcore import config
    from mlcore.pipelines import sections

    assert config.ComponentConfig is sections.ComponentConfig
    assert config.component_field is sections.component_field
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = config.nope


@pytest.mark.parametrize(
    ("validator", "accepted", "refused"),
    [
        (in_range(0, 1), [0, 0.5, 1, None], [-0.01, 1.01, float("nan"), float("inf")]),
        (in_range(0, 1, low_open=True, high_open=True), [0.01, 0.99], [0, 1, -1, 2]),
        (in_range(high=10, high_open=True), [-5, 9.99], [10, 11]),
        (in_range(low=2), [2, 100], [1.99]),
        (positive, [1e-9, 3], [0, -1]),
        (non_negative, [0, 3], [-1e-9]),
    ],
)
def test_range_validators_hold_each_bound(validator, accepted, refused) -> None:
    attribute = attrs.fields(Inner).hidden
    for value in accepted:
        validator(None, attribute, value)
    for value in refused:
        with pytest.raises(ValueError, match=f"hidden={value!r} is out of range"):
            validator(None, attribute, value)


def test_range_error_shows_the_interval() -> None:
    with pytest.raises(ValueError, match=r"\(allowed: \(0, 1\]\)"):
        in_range(0, 1, low_open=True)(None, attrs.fields(Inner).hidden, 2)
    with pytest.raises(ValueError, match=r"\(allowed: \[-inf, 1\)\)"):
        in_range(high=1, high_open=True)(None, attrs.fields(Inner).hidden, 1)


@attrs.define
class Bare:
    items: list = attrs.field(factory=list)
    pair: tuple = ()
    sizes: tuple[int, ...] = ()
    counts: list[int] = attrs.field(factory=list)


def test_bare_and_parametrised_sequences_are_converted() -> None:
    got = structure(Bare, {"items": [1, "a"], "pair": [1, 2], "sizes": [1.0, "2"], "counts": ["3"]})
    assert got.items == [1, "a"] and got.pair == (1, 2)
    assert got.sizes == (1, 2) and all(type(v) is int for v in got.sizes)
    assert got.counts == [3]


@attrs.define
class Unresolvable:
    x: NoSuchType = 1  # type: ignore[name-defined]  # noqa: F821


def test_describe_fields_survives_annotations_it_cannot_resolve() -> None:
    assert [row["name"] for row in describe_fields(Unresolvable)] == ["x"]


def test_switching_a_nested_component_by_set_drops_its_old_options() -> None:
    profile = {"trainer": {"epochs": 3, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}}}
    out = layer_configs(None, profile, {}, ["trainer.optimizer.name=sgd"])
    assert out["trainer"] == {"epochs": 3, "optimizer": {"name": "sgd"}}


def test_flatten_keys_nested_tables_and_drops_empty_ones() -> None:
    from mlcore.config import flatten, flatten_dotted

    doc = {"a": {"b": 1, "c": {"d": [1, 2]}, "e": {}}, "f": "x"}
    assert flatten(doc) == {("a", "b"): 1, ("a", "c", "d"): [1, 2], ("f",): "x"}
    assert flatten_dotted(doc) == {"a.b": 1, "a.c.d": [1, 2], "f": "x"}
