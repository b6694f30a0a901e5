"""``StreamingPredictor``: one reference sample in, the predicted error out, as a controller would run it.

It keeps the last ``sequence_length`` samples (normalised with the training statistics) in a
double-length buffer, so each call copies one row and reads one contiguous window (no roll).
It runs the eager model, a TorchScript file (``mlcore export --format torchscript``) or an ONNX
file (``onnxruntime``), and reports its own latency::

    predictor = StreamingPredictor.from_checkpoint("runs/x/checkpoints/best.pt")
    ex, ey, ms = predictor.predict(x_ref, y_ref, vx_ref, vy_ref)   # mm, mm, ms

Until the history is full it returns zero error (and the latency of the bookkeeping).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlcore.errors import CheckpointError, DataError

__all__ = ["StreamingPredictor"]


class StreamingPredictor:
    """Predict the tracking error sample by sample.

    Args:
        model: ``(1, T, 4) -> (1, 2)`` in normalised units: an ``nn.Module``, a TorchScript module or
            any callable taking and returning a tensor.
        stats: the training statistics (``stats.json`` / the checkpoint's data state).
        sequence_length: T.
    """

    def __init__(self, model: Callable[[torch.Tensor], Any], stats: dict[str, Any], sequence_length: int) -> None:
        self.model = model
        self.length = int(sequence_length)
        try:
            self.f_mean = np.asarray(stats["feature_mean"], dtype=np.float32)
            self.f_std = np.asarray(stats["feature_std"], dtype=np.float32)
            self.t_mean = np.asarray(stats["target_mean"], dtype=np.float64)
            self.t_std = np.asarray(stats["target_std"], dtype=np.float64)
        except KeyError as exc:
            raise DataError(f"StreamingPredictor: the statistics lack {exc.args[0]!r}") from None
        self._buf = np.zeros((2 * self.length, self.f_mean.shape[0]), dtype=np.float32)
        self._tensor = torch.from_numpy(self._buf)
        self.reset()

    def reset(self) -> None:
        """Forget the history (a new layer or print)."""
        self._count = 0
        self._i = 0

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> StreamingPredictor:
        """From a ``best.pt``/``last.pt`` of a ``printer-corrector`` run (model + statistics inside)."""
        from mlcore.training.checkpoint import build_model, load_checkpoint

        ckpt = load_checkpoint(path)
        model = build_model(ckpt, expect="realtime_corrector")
        stats = (ckpt["meta"].get("data_state") or {}).get("stats")
        if not stats:
            raise CheckpointError(f"checkpoint {path} has no normalisation statistics (data state)")
        length: Any = model.config.sequence_length  # type: ignore[union-attr]
        return cls(model, stats, int(length))

    @classmethod
    def from_torchscript(cls, path: str | Path, stats: dict[str, Any], sequence_length: int) -> StreamingPredictor:
        """From an exported TorchScript file and the run's ``stats.json`` content."""
        module = torch.jit.load(str(path), map_location="cpu").eval()
        return cls(module, stats, sequence_length)

    @classmethod
    def from_onnx(cls, path: str | Path, stats: dict[str, Any], sequence_length: int) -> StreamingPredictor:
        """From an exported ONNX file (needs ``onnxruntime``)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {name: x.numpy()})[0])

        return cls(run, stats, sequence_length)

    def push(self, x_ref: float, y_ref: float, vx_ref: float, vy_ref: float) -> None:
        """Add one sample to the history without predicting."""
        row = (np.array((x_ref, y_ref, vx_ref, vy_ref), dtype=np.float32) - self.f_mean) / self.f_std
        i = self._i
        self._buf[i] = row
        self._buf[i + self.length] = row
        self._i = (i + 1) % self.length
        self._count += 1

    def predict(self, x_ref: float, y_ref: float, vx_ref: float, vy_ref: float) -> tuple[float, float, float]:
        """``(error_x, error_y, latency_ms)`` after adding this sample (errors in mm)."""
        t0 = time.perf_counter()
        self.push(x_ref, y_ref, vx_ref, vy_ref)
        if self._count < self.length:
            return 0.0, 0.0, (time.perf_counter() - t0) * 1000.0
        window = self._tensor[self._i : self._i + self.length].unsqueeze(0)
        with torch.inference_mode():
            out = self.model(window)
        e = out[0].numpy().astype(np.float64) * self.t_std + self.t_mean
        return float(e[0]), float(e[1]), (time.perf_counter() - t0) * 1000.0
