"""The ``[search]`` table: parsing, one-line errors naming the key, conditional keys, grids."""

from __future__ import annotations

import pytest

from mlcore.config import apply_overrides
from mlcore.errors import ConfigError
from mlcore.tuning.space import as_override, parse_search

from .conftest import search_table


def test_every_type_parses():
    s = parse_search(
        search_table(
            space={
                "a.i": {"type": "int", "low": 1, "high": 9, "step": 2},
                "a.f": {"type": "float", "low": 0.0, "high": 1.0},
                "a.l": {"type": "log", "low": 1e-4, "high": 1e-1},
                "a.fl": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
                "a.c": {"type": "categorical", "choices": ["x", "y"]},
            }
        )
    )
    by = {p.key: p for p in s.params}
    assert [p.key for p in s.params] == ["a.i", "a.f", "a.l", "a.fl", "a.c"]
    assert by["a.i"].grid_values() == [1, 3, 5, 7, 9]
    assert by["a.l"].log and by["a.fl"].log and not by["a.f"].log
    assert by["a.c"].choices == ("x", "y")
    assert (s.metric, s.report_key, s.trials, s.sampler, s.pruner) == ("best_metric", "val_loss", 6, "random", "median")


def test_nested_tables_equal_quoted_keys():
    quoted = parse_search(search_table(space={"trainer.lr": {"type": "log", "low": 1e-3, "high": 1e-1}}))
    nested = parse_search(search_table(space={"trainer": {"lr": {"type": "log", "low": 1e-3, "high": 1e-1}}}))
    assert quoted.params == nested.params


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"trainer.lr": {"type": "log", "low": 0.0, "high": 1.0}}, "search.space.trainer.lr.low=0.0: a log-scale"),
        ({"trainer.lr": {"type": "flaot", "low": 0.0, "high": 1.0}}, "search.space.trainer.lr.type='flaot'"),
        ({"trainer.lr": {"type": "float", "low": 2.0, "high": 1.0}}, "search.space.trainer.lr: low=2.0 is above"),
        ({"trainer.lr": {"type": "float", "high": 1.0}}, "search.space.trainer.lr: a float parameter needs low"),
        ({"trainer.epochs": {"type": "int", "low": 1.5, "high": 3}}, "search.space.trainer.epochs.low=1.5"),
        ({"trainer.lr": {"type": "float", "low": 0, "high": 1, "hihg": 2}}, "unknown option 'hihg'"),
        ({"model.size": {"type": "categorical", "choices": []}}, "search.space.model.size.choices"),
        ({"model.size": {"type": "categorical", "choices": ["a"], "low": 1}}, "search.space.model.size.low"),
        ({"trainer.lr": 0.1}, "search.space.trainer.lr: expected a table"),
        (
            {"b": {"type": "int", "low": 1, "high": 2, "when": {"a": 1}}, "a": {"type": "int", "low": 1, "high": 2}},
            "search.space.b.when: 'a' must come before 'b'",
        ),
        ({"b": {"type": "int", "low": 1, "high": 2, "when": {"zz": 1}}}, "search.space.b.when: 'zz' is not a searched"),
        (
            {
                "s": {"type": "categorical", "choices": ["cosine", "step"]},
                "n": {"type": "int", "low": 1, "high": 2, "when": {"s": "stpe"}},
            },
            "search.space.n.when.s: 'stpe' is not one of its choices",
        ),
    ],
)
def test_a_bad_space_is_one_line_naming_the_key(space, message):
    with pytest.raises(ConfigError) as err:
        parse_search(search_table(space=space), source="s.toml")
    text = str(err.value)
    assert text.startswith("s.toml: ") and message in text and "\n" not in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sampler": "bayes"}, "search.sampler='bayes'"),
        ({"pruner": "hyperband"}, "search.pruner='hyperband'"),
        ({"direction": "min"}, "search.direction='min'"),
        ({"trials": 0}, "search.trials=0"),
        ({"metirc": "x"}, "search.metirc: unknown key"),
        ({"space": {}}, "search.space: needs at least one parameter"),
        ({"sampler": "grid"}, "search.space.trainer.lr: a grid search needs `values"),
    ],
)
def test_bad_search_options_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_search(search_table(**change))


def test_missing_metric_is_named():
    table = search_table()
    del table["metric"]
    with pytest.raises(ConfigError, match=r"search\.metric"):
        parse_search(table)


def test_conditional_keys_are_sampled_only_when_active():
    s = parse_search(
        search_table(
            space={
                "trainer.scheduler": {"type": "categorical", "choices": ["cosine", "step"]},
                "trainer.step_size": {"type": "int", "low": 1, "high": 4, "when": {"trainer.scheduler": "step"}},
                "trainer.gamma": {"type": "float", "low": 0.1, "high": 0.9, "when": {"trainer.scheduler": ["step"]}},
            }
        )
    )

    def fixed(choice):
        return lambda p: choice if p.key == "trainer.scheduler" else p.low

    assert s.sample(fixed("cosine")) == {"trainer.scheduler": "cosine"}
    assert s.sample(fixed("step")) == {"trainer.scheduler": "step", "trainer.step_size": 1, "trainer.gamma": 0.1}


def test_grid_uses_values_choices_and_int_steps():
    s = parse_search(
        search_table(
            sampler="grid",
            space={
                "trainer.lr": {"type": "log", "low": 1e-3, "high": 1e-1, "values": [1e-3, 1e-2]},
                "model.hidden": {"type": "categorical", "choices": [4, 16]},
                "trainer.epochs": {"type": "int", "low": 2, "high": 6, "step": 2},
            },
        )
    )
    assert s.grid() == {"trainer.lr": [1e-3, 1e-2], "model.hidden": [4, 16], "trainer.epochs": [2, 4, 6]}


@pytest.mark.parametrize("value", [0.003, 7, "large", True, 'with "quotes"'])
def test_overrides_round_trip_through_set(value):
    assert apply_overrides({}, [as_override("model.x", value)]) == {"model": {"x": value}}


def test_document_round_trips():
    s = parse_search(
        search_table(
            space={
                "a": {"type": "categorical", "choices": [1, 2]},
                "b": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.5, "when": {"a": 2}},
            }
        )
    )
    assert parse_search(s.to_document()) == s
