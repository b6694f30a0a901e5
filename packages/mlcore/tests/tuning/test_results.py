"""trials.csv, the best trial and report.md from trial rows."""

from __future__ import annotations

import csv

from mlcore.tuning.results import TrialRow, best_row, write_csv, write_report
from mlcore.tuning.space import parse_search

from .conftest import search_table

SPACE = {
    "trainer.scheduler": {"type": "categorical", "choices": ["cosine", "step"]},
    "trainer.step_size": {"type": "int", "low": 1, "high": 4, "when": {"trainer.scheduler": "step"}},
}
ROWS = [
    TrialRow(0, "complete", 0.5, 6, 1.0, {"trainer.scheduler": "cosine"}, "trials/0000"),
    TrialRow(1, "complete", 0.2, 6, 1.0, {"trainer.scheduler": "step", "trainer.step_size": 3}, "trials/0001"),
    TrialRow(2, "pruned", None, 2, 0.3, {"trainer.scheduler": "step", "trainer.step_size": 1}, "trials/0002"),
    TrialRow(3, "fail", None, 0, 0.1, {"trainer.scheduler": "cosine"}, "trials/0003"),
]


def test_best_follows_the_direction_and_skips_unfinished():
    assert best_row(ROWS, parse_search(search_table(space=SPACE))).number == 1
    assert best_row(ROWS, parse_search(search_table(space=SPACE, direction="maximize"))).number == 0
    assert best_row(ROWS[2:], parse_search(search_table(space=SPACE))) is None


def test_csv_has_a_column_per_key_and_blanks_for_inactive_ones(tmp_path):
    write_csv(list(reversed(ROWS)), parse_search(search_table(space=SPACE)), tmp_path / "t.csv")
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["trainer.step_size"] for r in rows] == ["", "3", "1", ""]
    assert [r["best_metric"] for r in rows] == ["0.5", "0.2", "", ""]
    assert [r["epochs"] for r in rows] == ["6", "6", "2", "0"]


def test_report_ranks_trials_and_counts_epochs(tmp_path):
    text = write_report(
        tmp_path, ROWS, parse_search(search_table(space=SPACE)), engine="Optuna", plots={}, skipped={}, seconds=3
    ).read_text()
    assert "2 complete, 1 pruned, 1 failed; together 14 epochs" in text
    assert "**#1** with `best_metric` = **0.2**" in text
    top = [line for line in text.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert top[0].startswith("| 1 | 0.2 |") and top[1].startswith("| 0 | 0.5 | 6 | cosine | – |")
