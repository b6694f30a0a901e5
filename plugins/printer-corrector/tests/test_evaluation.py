"""The tracking_error evaluator: figures in mm from the data's statistics, the budget line, the plots."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mlcore_printer_corrector.data import PrinterData, PrinterDataConfig
from mlcore_printer_corrector.evaluation import TrackingErrorEvaluator, TrackingEvaluatorConfig
from mlcore_printer_corrector.parts import SliceConfig


class Oracle(nn.Module):
    """Returns the normalised target of each window, looked up from the dataset (a perfect predictor)."""

    def __init__(self, data: PrinterData) -> None:
        super().__init__()
        ds = data.test_set()
        self.lookup = {tuple(ds[i].features[-1].tolist()): ds[i].target for i in range(len(ds))}
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.lookup[tuple(row.tolist())] for row in x[:, -1]]) + 0 * self.w


@pytest.fixture(scope="module")
def data() -> PrinterData:
    cfg = PrinterDataConfig(
        parts=["boat"], layers="sampled:5", sequence_length=10, stride=3, slicing=SliceConfig(layer_height=1.0)
    )
    return PrinterData(cfg).prepare()


def test_a_perfect_predictor_scores_perfectly_and_writes_the_files(data, tmp_path):
    ev = TrackingErrorEvaluator(TrackingEvaluatorConfig(latency_repeats=10, save_predictions=True))
    m = ev.evaluate(Oracle(data), data, out_dir=tmp_path)
    assert m["r2"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert m["target_rms_um"] == pytest.approx(1000 * float(data.raw["test"]["targets"].pow(2).mean().sqrt()), rel=0.1)
    for name in ("trajectory_comparison", "error_distribution", "error_correlation", "per_axis_error"):
        assert (tmp_path / "plots" / f"{name}.png").is_file()
    assert (tmp_path / "predictions.npz").is_file()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["r2"] == pytest.approx(m["r2"])


def test_errors_are_reported_in_mm(data):
    class Zero(nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 2)

    m = TrackingErrorEvaluator(TrackingEvaluatorConfig(latency_repeats=10, plots=False)).evaluate(Zero(), data)
    # predicting 0 normalised = the training mean error: the RMSE is about the error's own RMS (mm)
    assert 0.02 < m["rmse"] < 0.3
    assert m["rmse_um"] == pytest.approx(1000 * m["rmse"])


def test_the_budget_line(data):
    class Slow(nn.Module):
        def forward(self, x):
            import time

            time.sleep(0.003)
            return torch.zeros(x.shape[0], 2)

    m = TrackingErrorEvaluator(TrackingEvaluatorConfig(latency_repeats=10, plots=False, budget_ms=1.0)).evaluate(
        Slow(), data
    )
    assert m["latency_p99_ms"] > 3.0 and m["realtime_ok"] == 0.0
    fast = TrackingErrorEvaluator(TrackingEvaluatorConfig(latency_repeats=10, plots=False, budget_ms=1000.0))
    assert fast.evaluate(Slow(), data)["realtime_ok"] == 1.0
