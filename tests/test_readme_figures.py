"""The README's measured figures are the benchmark results files' figures, digit for digit.

Every row of the "Results at a glance" table (and the demo times in the Quick start) is mapped
to the keys of ``tools/bench/results/*.json`` it quotes. A number edited on one side only, a new
row or a new number without a results key behind it, fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tools" / "bench" / "results"
README = ROOT / "README.md"

Results = Callable[[str], Any]
#: an expected piece of text, computed from the results files
Expect = Callable[[Results], str]


def _load(name: str) -> Any:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _minus(text: str) -> str:
    """The README writes negative numbers with a true minus sign."""
    return text.replace("-", "−")


def _thousands(value: float) -> str:
    return f"{int(value):,}".replace(",", " ")


def _cli(r: Results, command: str) -> float:
    return next(row["median_s"] for row in r("cli_startup.json")["rows"] if row["command"] == command)


def _overhead(r: Results, model: str, config: str = "default") -> dict[str, Any]:
    return next(
        row for row in r("trainer_overhead.json")["results"] if row["model"] == model and row["config"] == config
    )


def _trc_baseline(r: Results, method: str) -> dict[str, Any]:
    return next(b for b in r("trc_control.json")["baselines"] if b["method"].startswith(method))


def _trc_target(r: Results, metric: str) -> dict[str, Any]:
    return next(t for t in r("trc_control.json")["targets"] if t["metric"] == metric)


def _sac_shaped(r: Results) -> dict[str, Any]:
    return r("nav_rl.json")["per_nstep_paired_sac_shaped"]


IMPORT_TORCH = "python -c 'import torch'"

#: row of the table (the start of its first cell) -> expected texts in its measured cell
ROWS: dict[str, list[Expect]] = {
    "`mlcore plugins` / `mlcore list` start-up": [
        lambda r: f"{_cli(r, 'mlcore plugins'):.2f} s",
        lambda r: f"{_cli(r, 'mlcore list'):.2f} s",
        lambda r: f"{_cli(r, IMPORT_TORCH):.2f} s for `import torch`",
    ],
    "generic Trainer vs a hand-written loop": [
        lambda r: (
            "identical loss curves"
            if all(x["identical_curves"] for x in r("trainer_overhead.json")["results"] if x["config"] != "lightning")
            else "?"
        ),
        lambda r: _minus(
            f"default config {_overhead(r, 'mlp')['overhead_pct']:.1f} % (MLP) and "
            f"{_overhead(r, 'lstm')['overhead_pct']:.1f} % (LSTM)"
        ),
        lambda r: _minus(
            f"lean config {_overhead(r, 'mlp', 'lean')['overhead_pct']:.1f} % / "
            f"{_overhead(r, 'lstm', 'lean')['overhead_pct']:.1f} %"
        ),
        lambda r: _minus(
            f"PyTorch Lightning {_overhead(r, 'mlp', 'lightning')['overhead_pct']:.1f} % / "
            f"{_overhead(r, 'lstm', 'lightning')['overhead_pct']:.1f} %"
        ),
    ],
    "trc-control, full profile": [
        lambda r: f"{100 * r('trc_control.json')['metrics']['success_rate']:.0f} % success",
        lambda r: f"terminal error {r('trc_control.json')['metrics']['mean_terminal_error']:.2e}",
        lambda r: f"cost gap {100 * r('trc_control.json')['metrics']['cost_gap']:+.4f} %",
        lambda r: f"same-size MLP {100 * _trc_baseline(r, 'MLP')['cost_gap_vs_oracle']:+.4f} %",
        lambda r: (
            f"{_trc_baseline(r, 'linear + terminal projection')['parameters']}-parameter linear policy made feasible "
            f"{100 * _trc_baseline(r, 'linear + terminal projection')['cost_gap_vs_oracle']:+.2f} %"
        ),
        lambda r: f"{r('trc_control.json')['export']['onnx_ms_batch1']:.3f} ms ONNX Runtime",
        lambda r: (
            f"{r('trc_control.json')['metrics']['inference_ms_batch1_torchscript']:.2f} ms TorchScript-frozen"
            + (" (misses)" if not _trc_target(r, "inference_ms_batch1_torchscript")["met"] else "")
        ),
        lambda r: f"{r('trc_control.json')['metrics']['inference_ms_batch1']:.2f} ms eager",
    ],
    "trc-control, pendulum swing-up in closed loop": [
        lambda r: f"{100 * _swing(r, 'TRC + DAgger')['success_rate']:.0f} % success",
        lambda r: _minus(f"cost gap {100 * _swing(r, 'TRC + DAgger')['cost_gap']:+.1f} %"),
        lambda r: (
            f"same-size MLP, same scheme: {100 * _swing(r, 'MLP + DAgger')['success_rate']:.0f} % / "
            + _minus(f"{100 * _swing(r, 'MLP + DAgger')['cost_gap']:+.1f} %")
        ),
        lambda r: f"re-planned LQR {100 * _swing(r, 'LQR on the linearisation')['success_rate']:.1f} %",
    ],
    "nav-rl, HER + SAC on sparse goal reaching": [
        lambda r: f"{100 * r('nav_rl.json')['her']['summary']['her']['final_success_mean']:.0f} % success",
        lambda r: f"({len(r('nav_rl.json')['her']['summary']['her']['final_success'])} seeds)",
        lambda r: f"stays at {100 * r('nav_rl.json')['her']['summary']['plain']['final_success_mean']:.0f} %",
    ],
    "nav-rl, SAC on shaped navigation": [
        lambda r: f"plain {_thousands(_sac_shaped(r)['variants']['plain']['median_steps_to_threshold'])}",
        lambda r: (
            f"+ PER {_thousands(_sac_shaped(r)['variants']['per']['median_steps_to_threshold'])} "
            f"(Wilcoxon p = {_sac_shaped(r)['paired_vs_plain']['per']['steps_to_threshold']['wilcoxon_p']:.4f})"
        ),
        lambda r: f"+ 3-step returns {_thousands(_sac_shaped(r)['variants']['n_step']['median_steps_to_threshold'])}",
    ],
    "nav-rl, PER `sample()` at batch": [
        lambda r: f"{r('nav_rl.json')['per']['sample_ratio']:.2f}× uniform replay",
    ],
}
#: numbers in a row's first cell (the setting) that come from the results too
SETTINGS: dict[str, list[Expect]] = {
    "trc-control, full profile": [lambda r: f"**{r('trc_control.json')['metrics']['epochs_run']:.0f} epochs**"],
    "nav-rl, SAC on shaped navigation": [
        lambda r: f"env steps to {100 * _sac_shaped(r)['threshold']:.0f} % success",
        lambda r: f"median of {len(_sac_shaped(r)['seeds'])} paired seeds",
    ],
    "nav-rl, PER `sample()` at batch": [lambda r: f"at batch {r('nav_rl.json')['per']['batch_size']}"],
    "trc-control, pendulum swing-up in closed loop": [
        lambda r: f"{r('trc_control.json')['closed_loop_selection'][SWING]['num_problems']} test problems"
    ],
}

#: the pendulum record the README quotes, and the scheme of its rows
SWING = "pendulum_traj_dagger8_selection_200problems_only"
SWING_SCHEME = {
    "TRC + DAgger": "TRC + DAgger + plan selection (6 cycles, jittered states + LQR), LQR catch within 0.5",
    "MLP + DAgger": "MLP + DAgger + plan selection (its one plan, jittered states + LQR), LQR catch within 0.5",
    "LQR on the linearisation": "LQR on the linearisation + plan selection, LQR catch within 0.5",
}


def _swing(r: Results, who: str) -> dict[str, Any]:
    rows = r("trc_control.json")["closed_loop_selection"][SWING]["rows"]
    return next(row for row in rows if row["method"] == SWING_SCHEME[who])


def _results() -> Results:
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            cache[name] = _load(name)
        return cache[name]

    return get


def _glance_table() -> dict[str, tuple[str, str]]:
    """Rows of the README's "Results at a glance" table: ROWS key -> (first cell, measured cell)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Results at a glance", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] == "what" or set(cells[0]) <= {"-"}:
            continue
        keys = [k for k in ROWS if cells[0].startswith(k)]
        assert len(keys) == 1, f"README row {cells[0]!r} is mapped to {len(keys)} entries of ROWS (needs exactly 1)"
        rows[keys[0]] = (cells[0], cells[1])
    return rows


def _unexplained_numbers(cell: str, expected: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    for piece in [*expected, *allowed]:
        cell = cell.replace(piece, " ")
    return re.findall(r"\d+(?:[.,]\d+)?", cell)


def test_every_row_of_the_table_is_mapped_to_results_keys() -> None:
    table = _glance_table()
    assert set(table) == set(ROWS), f"rows without a mapping: {set(table) - set(ROWS)}; stale: {set(ROWS) - set(table)}"


@pytest.mark.parametrize("row", sorted(ROWS))
def test_row_quotes_the_results_files(row: str) -> None:
    r = _results()
    first, measured = _glance_table()[row]
    expected = [f(r) for f in ROWS[row]]
    for text in expected:
        assert text in measured, f"README row {row!r}: expected {text!r} (from the results files) in {measured!r}"
    # and nothing else in the cell is a number: a new figure needs a results key behind it
    assert _unexplained_numbers(measured, expected, allowed=("batch-1", "3-step")) == [], measured
    settings = [f(r) for f in SETTINGS.get(row, [])]
    for text in settings:
        assert text in first, f"README row {row!r}: expected {text!r} in {first!r}"


def _demo_minutes(r: Results, plugin: str) -> str:
    row = next(x for x in r("demo_time.json")["rows"] if x["plugin"] == plugin)
    assert row["ok"], f"the {plugin} demo run failed when it was measured"
    return f"{row['median_s'] / 60:.1f} min"


def test_quick_start_demo_times_are_measured() -> None:
    r = _results()
    text = README.read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first_line_text = quick.split("The first line", 1)[1].split("The\nsecond", 1)[0]
    assert f"{_demo_minutes(r, 'trc-control')} on a 2-core CPU" in first_line_text.replace("\n", " ")
    nav_line = next(line for line in quick.splitlines() if "mlcore run --plugin nav-rl" in line)
    assert nav_line.rstrip().endswith(_demo_minutes(r, "nav-rl")), nav_line


def test_a_changed_figure_is_caught() -> None:
    """The check itself can fail: the trc row with a stale latency does not pass."""
    r = _results()
    _, measured = _glance_table()["trc-control, full profile"]
    stale = measured.replace(f"{r('trc_control.json')['export']['onnx_ms_batch1']:.3f} ms", "0.400 ms")
    expected = [f(r) for f in ROWS["trc-control, full profile"]]
    assert stale != measured
    assert not all(text in stale for text in expected)
    assert _unexplained_numbers(measured + " 7 ms", expected, allowed=("batch-1",)) == ["7"]
