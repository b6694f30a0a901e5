"""StreamingPredictor: sample-by-sample predictions equal the batched ones, eager and TorchScript."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcore.errors import DataError
from mlcore_printer_corrector.compensation import predict_series
from mlcore_printer_corrector.model import RealtimeCorrector, RealtimeCorrectorConfig
from mlcore_printer_corrector.streaming import StreamingPredictor

STATS = {
    "feature_mean": [120.0, 100.0, 0.5, -0.5],
    "feature_std": [15.0, 12.0, 50.0, 40.0],
    "target_mean": [0.001, -0.002],
    "target_std": [0.05, 0.08],
}


@pytest.fixture
def model() -> RealtimeCorrector:
    torch.manual_seed(0)
    return RealtimeCorrector(RealtimeCorrectorConfig(sequence_length=8, hidden_size=12)).eval()


def series(n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([120 + rng.normal(0, 10, n), 100 + rng.normal(0, 10, n), rng.normal(0, 40, (n, 2))])


def run(predictor: StreamingPredictor, feats: np.ndarray) -> np.ndarray:
    return np.array([predictor.predict(*row)[:2] for row in feats])


def test_streaming_equals_batched_predictions(model):
    feats = series()
    got = run(StreamingPredictor(model, STATS, 8), feats)
    want = predict_series(model, feats, STATS, 8)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert (got[:7] == 0).all() and np.abs(got[7:]).sum() > 0  # zero until the history is full


def test_reset_forgets_the_history(model):
    feats = series(20)
    p = StreamingPredictor(model, STATS, 8)
    first = run(p, feats)
    p.reset()
    np.testing.assert_allclose(run(p, feats), first)


def test_torchscript_model_gives_the_same_stream(model, tmp_path):
    path = tmp_path / "m.ts"
    torch.jit.script(model).save(str(path))
    feats = series()
    eager = run(StreamingPredictor(model, STATS, 8), feats)
    scripted = run(StreamingPredictor.from_torchscript(path, STATS, 8), feats)
    np.testing.assert_allclose(scripted, eager, atol=1e-6)
    *_, ms = StreamingPredictor.from_torchscript(path, STATS, 8).predict(*feats[0])
    assert ms > 0


def test_incomplete_statistics_are_named(model):
    with pytest.raises(DataError, match=r"lack 'target_std'"):
        StreamingPredictor(model, {k: v for k, v in STATS.items() if k != "target_std"}, 8)


def test_onnx_model_gives_the_same_stream(model, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from mlcore.exporting import export_model

    path = tmp_path / "m.onnx"
    assert export_model(model, None, path, format="onnx").ok
    feats = series()
    eager = run(StreamingPredictor(model, STATS, 8), feats)
    np.testing.assert_allclose(run(StreamingPredictor.from_onnx(path, STATS, 8), feats), eager, atol=1e-5)
