"""Tests of TorchScript / ONNX export with verification (mlcore/exporting.py)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from mlcore.errors import ConfigError, MlcoreError
from mlcore.exporting import ExportResult, export_model


class LSTMRegressor(nn.Module):
    """A sequence model: the kind whose batch axis exporters like to freeze."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 8, num_layers=2, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        return torch.randn(batch_size, 5, 3, generator=torch.Generator().manual_seed(batch_size))


class TwoInTwoOut(nn.Module):
    """Tuple inputs, tuple outputs, no example_input."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.a(x) + self.b(u))
        return h, h.sum(dim=1)


class SignBranch(nn.Module):
    """Data-dependent control flow: tracing freezes one branch, scripting keeps both."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() > 0):
            return x * self.scale
        return -x

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        sign = 1.0 if batch_size == 2 else -1.0  # traced on positives, checked on negatives
        return sign * torch.ones(batch_size, 3)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_lstm_has_dynamic_batch(tmp_path):
    model = LSTMRegressor()
    result = export_model(model, None, tmp_path / "m.ts", format="torchscript")
    assert isinstance(result, ExportResult)
    assert result.ok and result.format == "torchscript" and result.exporter == "trace"
    assert result.batch_sizes_checked == (1, 3)
    assert result.max_abs_diff <= 1e-5
    loaded = torch.jit.load(str(tmp_path / "m.ts"))
    x = torch.randn(7, 5, 3)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_export_leaves_the_callers_model_alone(tmp_path):
    model = LSTMRegressor().train()
    export_model(model, None, tmp_path / "m.ts", format="torchscript")
    assert model.training


def test_onnx_legacy_with_tuple_inputs_and_outputs(tmp_path):
    pytest.importorskip("onnxruntime")
    model = TwoInTwoOut()
    example = (torch.randn(2, 4), torch.randn(2, 2))
    result = export_model(model, example, tmp_path / "m.onnx", format="onnx", onnx_exporter="legacy")
    assert result.ok and result.exporter == "legacy" and result.batch_sizes_checked == (1, 3)
    assert result.max_abs_diff < 1e-5
    assert (tmp_path / "m.onnx").stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.shape[0] for i in session.get_inputs()] == ["batch", "batch"]
    x, u = torch.randn(5, 4), torch.randn(5, 2)
    h, s = session.run(None, {"input_0": x.numpy(), "input_1": u.numpy()})
    torch.testing.assert_close(torch.from_numpy(h), model(x, u)[0], atol=1e-5, rtol=1e-5)
    assert s.shape == (5,)


@pytest.mark.slow
def test_onnx_dynamo_exports_an_lstm_with_dynamic_batch(tmp_path):
    pytest.importorskip("onnxscript")
    result = export_model(LSTMRegressor(), None, tmp_path / "lstm.onnx", format="onnx", onnx_exporter="dynamo")
    assert result.ok and result.exporter == "dynamo"
    assert result.max_abs_diff < 1e-5
    assert not (tmp_path / "lstm.onnx.data").exists(), "weights must be inside the single .onnx file"


def test_batch_one_example_is_widened_and_static_export_checks_example_batch(tmp_path):
    model = TwoInTwoOut()
    example = (torch.randn(1, 4), torch.randn(1, 2))
    result = export_model(model, example, tmp_path / "m.ts", format="torchscript")
    assert result.ok and result.batch_sizes_checked == (1, 3)
    static = export_model(
        model, (torch.randn(2, 4), torch.randn(2, 2)), tmp_path / "s.ts", format="torchscript", dynamic_batch=False
    )
    assert static.ok and static.batch_sizes_checked == (2,)


def test_trace_that_freezes_a_branch_is_reported_and_auto_falls_back_to_script(tmp_path):
    traced = export_model(SignBranch(), None, tmp_path / "t.ts", format="torchscript", torchscript_method="trace")
    assert not traced.ok
    assert traced.max_abs_diff == pytest.approx(3.0)  # 2*(-1) vs -(-1)
    assert "MISMATCH" in traced.summary()
    auto = export_model(SignBranch(), None, tmp_path / "a.ts", format="torchscript")
    assert auto.ok and auto.exporter == "script" and auto.max_abs_diff == 0.0


def test_summary_prints_the_tolerance(tmp_path):
    result = export_model(
        TwoInTwoOut(),
        (torch.randn(2, 4), torch.randn(2, 2)),
        tmp_path / "m.ts",
        format="torchscript",
        atol=1e-3,
        rtol=1e-2,
    )
    line = result.summary()
    assert "atol 1e-03" in line and "rtol 1e-02" in line and "batch sizes 1, 3" in line and line.endswith("ok")
    assert result.to_dict()["batch_sizes_checked"] == [1, 3]


def test_model_without_example_input_is_a_one_line_error(tmp_path):
    with pytest.raises(MlcoreError, match="defines no example_input") as info:
        export_model(TwoInTwoOut(), None, tmp_path / "m.ts", format="torchscript")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m.ts").exists()


def test_missing_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(MlcoreError, match=r"onnxruntime: pip install 'mlcore\[onnx\]'") as info:
        export_model(LSTMRegressor(), None, tmp_path / "m.onnx", format="onnx")
    assert "\n" not in str(info.value)


def test_bad_format_and_bad_example(tmp_path):
    with pytest.raises(ConfigError, match="format='tflite' is not allowed"):
        export_model(LSTMRegressor(), None, tmp_path / "m", format="tflite")
    with pytest.raises(MlcoreError, match="must be a tensor or a tuple of tensors"):
        export_model(TwoInTwoOut(), [1, 2], tmp_path / "m.ts", format="torchscript")


def test_unexportable_model_is_a_one_line_error(tmp_path):
    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            return {"numpy": x.detach().numpy()}  # neither traceable nor scriptable

    with pytest.raises(MlcoreError, match="cannot") as info:
        export_model(Untraceable(), torch.zeros(2, 2), tmp_path / "m.ts", format="torchscript")
    assert "\n" not in str(info.value)
