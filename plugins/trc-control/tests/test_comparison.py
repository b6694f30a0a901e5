"""Tests of the comparison stage: baselines, cycle sweep, generalisation suite, tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcore_trc_control.comparison import (
    baseline_table,
    cycle_sweep,
    generalisation_suite,
    markdown_table,
    plot_baselines,
    plot_cycle_sweep,
)
from mlcore_trc_control.data import LQRData, LQRDataConfig
from mlcore_trc_control.models.trc import TinyRecursiveControl


@pytest.fixture(scope="module")
def setup() -> tuple[TinyRecursiveControl, LQRData]:
    data = LQRData(LQRDataConfig(num_samples=32, test_num_samples=24)).prepare()
    model = TinyRecursiveControl.create_small(latent_dim=16, hidden_dim=16, num_inner_cycles=1)
    return model, data


def test_baselines_rank_the_oracle_first(setup, tmp_path: Path) -> None:
    model, data = setup
    rows = baseline_table(model, data.test_problems())
    by = {r["method"]: r for r in rows}
    assert set(by) == {"random", "TRC", "LQR optimum (stated cost)", "oracle (min_energy expert)"}
    assert by["oracle (min_energy expert)"]["success_rate"] == 1.0
    assert by["oracle (min_energy expert)"]["cost_gap_vs_oracle"] == pytest.approx(0.0, abs=1e-12)
    assert by["LQR optimum (stated cost)"]["mean_cost"] <= by["oracle (min_energy expert)"]["mean_cost"]
    assert by["random"]["mean_terminal_error"] > by["oracle (min_energy expert)"]["mean_terminal_error"]
    assert plot_baselines(rows, tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cycle_sweep_runs_each_count(setup, tmp_path: Path) -> None:
    model, data = setup
    rows = cycle_sweep(model, data.test_problems(), [3, 1, 2])
    assert [r["outer_cycles"] for r in rows] == [1, 2, 3]
    assert all(r["trained_with"] == 3 for r in rows)
    assert plot_cycle_sweep(rows, tmp_path / "s.png").exists()


def test_generalisation_suite_reports_every_scenario(setup) -> None:
    model, data = setup
    rows = generalisation_suite(model, data.config, "min_energy", num_samples=16)
    assert len(rows) == 7
    assert all("mean_terminal_error" in r or "skipped" in r for r in rows)
    assert rows[0]["oracle_success_rate"] == 1.0


def test_markdown_table() -> None:
    text = markdown_table([{"a": 1, "b": 0.5}, {"a": 2}], [("a", "A"), ("b", "B")])
    assert text.splitlines() == ["| A | B |", "|---|---|", "| 1 | 0.5000 |", "| 2 | - |"]
