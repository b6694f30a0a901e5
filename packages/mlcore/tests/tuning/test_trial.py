"""A trial's value: the run's metric, else the best per-epoch value in the search's direction."""

from __future__ import annotations

import pytest

from mlcore.errors import ConfigError
from mlcore.tuning.space import parse_search
from mlcore.tuning.trial import TrialRecorder, objective_value

from .conftest import search_table


def _recorder(metric, direction, values, report="val_loss"):
    rec = TrialRecorder(parse_search(search_table(metric=metric, direction=direction, report=report)))
    for step, v in enumerate(values, 1):
        rec.report({"val_loss": v, "val_acc": 1 - v}, step)
    return rec


def test_the_run_metric_wins():
    assert objective_value({"best_metric": 0.25}, _recorder("best_metric", "minimize", [0.5, 0.1])) == 0.25


@pytest.mark.parametrize(("direction", "expected"), [("minimize", 0.1), ("maximize", 0.5)])
def test_else_the_best_epoch_in_the_direction(direction, expected):
    assert objective_value({}, _recorder("val_loss", direction, [0.3, 0.1, 0.5])) == expected


def test_the_report_key_is_forwarded_per_epoch():
    seen = []
    rec = TrialRecorder(parse_search(search_table(report="val_acc")), lambda v, s: seen.append((s, v)))
    rec.report({"val_loss": 0.25, "val_acc": 0.75}, 1)
    rec.report({"val_loss": None, "val_acc": float("nan")}, 2)  # not a finite number: not forwarded
    assert seen == [(1, 0.75)] and rec.epochs == 2


def test_a_metric_nowhere_is_named_with_what_exists():
    with pytest.raises(ConfigError, match=r"search.metric='f1'.*its metrics: rmse; per-epoch: val_acc, val_loss"):
        objective_value({"rmse": 1.0, "name": "x"}, _recorder("f1", "maximize", [0.2]))
