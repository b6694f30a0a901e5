"""TorchScript and ONNX export, verified against the eager model.

::

    from mlcore.exporting import export_model

    result = export_model(model, None, "model.onnx", format="onnx")  # uses model.example_input()
    print(result.summary())
    # onnx export to model.onnx: max |exported - eager| = 3.0e-08 on batch sizes 1, 3 (atol 1e-04, rtol 1e-04): ok

The exported file is written atomically with a dynamic batch axis (``dynamic_batch=True``),
then loaded back (``torch.jit.load`` or onnxruntime) and run on batch sizes 1 and 3; its outputs
are compared with the eager model's and the largest absolute difference is recorded.

ONNX uses the ``torch.export``-based exporter (``onnx_exporter="dynamo"``), which handles
LSTM/GRU models; ``"auto"`` (default) falls back to the legacy TorchScript-based exporter when
the model cannot be captured by ``torch.export``; ``"legacy"`` forces it (faster for small models).
ONNX needs ``pip install 'mlcore[onnx]'`` (onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlcore.errors import ConfigError, MlcoreError

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "ExportResult", "export_model", "resolve_example_input"]

FORMATS = ("onnx", "torchscript")
ONNX_EXPORTERS = ("auto", "dynamo", "legacy")
ONNX_INSTALL_HINT = "pip install 'mlcore[onnx]'"


@attrs.frozen
class ExportResult:
    """What :func:`export_model` wrote and how closely the exported file matches the eager model.

    Attributes:
        path: the exported file.
        format: ``"onnx"`` or ``"torchscript"``.
        max_abs_diff: largest ``|exported - eager|`` over every output and checked batch size.
        atol, rtol: the tolerance of the check (``|diff| <= atol + rtol * |eager|``).
        ok: whether every output was within tolerance.
        batch_sizes_checked: batch sizes the exported file was run on.
        exporter: how it was produced (``trace``, ``script``, ``dynamo``, ``legacy``).
    """

    path: Path
    format: str
    max_abs_diff: float
    atol: float
    rtol: float
    ok: bool
    batch_sizes_checked: tuple[int, ...]
    exporter: str = ""

    def summary(self) -> str:
        """One line for the CLI and logs, with the tolerance."""
        sizes = ", ".join(str(b) for b in self.batch_sizes_checked)
        verdict = "ok" if self.ok else "MISMATCH"
        return (
            f"{self.format} export to {self.path}: max |exported - eager| = {self.max_abs_diff:.1e} "
            f"on batch sizes {sizes} (atol {self.atol:.0e}, rtol {self.rtol:.0e}): {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "path": str(self.path),
            "format": self.format,
            "max_abs_diff": self.max_abs_diff,
            "atol": self.atol,
            "rtol": self.rtol,
            "ok": self.ok,
            "batch_sizes_checked": list(self.batch_sizes_checked),
            "exporter": self.exporter,
        }


# --------------------------------------------------------------------------- inputs and outputs


def _as_tuple(example: Any) -> tuple[torch.Tensor, ...]:
    import torch

    if isinstance(example, torch.Tensor):
        return (example,)
    if isinstance(example, list | tuple) and example and all(isinstance(t, torch.Tensor) for t in example):
        return tuple(example)
    raise MlcoreError(f"example input must be a tensor or a tuple of tensors, got {type(example).__name__}")


def _batch_size(inputs: tuple[torch.Tensor, ...]) -> int:
    sizes = {t.shape[0] for t in inputs if t.dim() > 0}
    if len(sizes) != 1:
        raise MlcoreError(f"example inputs must share their first (batch) dimension, got sizes {sorted(sizes)}")
    return sizes.pop()


def resolve_example_input(model: nn.Module, example_input: Any = None, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
    """The example given, else ``model.example_input(batch_size)``; a one-line error when neither exists."""
    if example_input is None:
        factory = getattr(model, "example_input", None)
        if not callable(factory):
            raise MlcoreError(
                f"cannot export {type(model).__name__}: it defines no example_input(batch_size) "
                "and no example input was given"
            )
        example_input = factory(batch_size)
    return _as_tuple(example_input)


def _inputs_for_batch(model: nn.Module, example: tuple[torch.Tensor, ...], batch: int) -> tuple[torch.Tensor, ...]:
    """Inputs of batch size ``batch``: from ``model.example_input`` when it exists, else rows of the example."""
    import torch

    factory = getattr(model, "example_input", None)
    if callable(factory):
        made = _as_tuple(factory(batch))
        if _batch_size(made) == batch:
            return made
    n = _batch_size(example)
    index = torch.arange(batch) % n
    # rows taken in a shifted order so a batch of 3 is not three copies of one sample
    index = (index + torch.arange(batch) // n) % n
    return tuple(t.index_select(0, index.to(t.device)) if t.dim() > 0 else t for t in example)


def _flatten_outputs(out: Any) -> list[torch.Tensor]:
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, Mapping):
        return [t for v in out.values() for t in _flatten_outputs(v)]
    if isinstance(out, list | tuple):
        return [t for v in out for t in _flatten_outputs(v)]
    if out is None:
        return []
    raise MlcoreError(f"cannot compare model output of type {type(out).__name__}")


def _compare(eager: list[torch.Tensor], exported: list[Any], atol: float, rtol: float) -> tuple[float, bool]:
    import numpy as np

    if len(eager) != len(exported):
        raise MlcoreError(f"exported model returned {len(exported)} outputs, the eager model {len(eager)}")
    max_diff, ok = 0.0, True
    for e, x in zip(eager, exported, strict=True):
        e_np = e.detach().cpu().numpy().astype(np.float64)
        x_np = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
        if e_np.shape != x_np.shape:
            return float("inf"), False
        if e_np.size:
            max_diff = max(max_diff, float(np.max(np.abs(e_np - x_np))))
        ok = ok and bool(np.allclose(x_np, e_np, atol=atol, rtol=rtol, equal_nan=True))
    return max_diff, ok


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporters' deprecation chatter and torchvision notices (warnings and logs)."""
    noisy = [
        logging.getLogger(n)
        for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript", "onnx_ir")
    ]
    levels = [lg.level for lg in noisy]
    try:
        for lg in noisy:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(noisy, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _temp_beside(path: Path) -> Iterator[Path]:
    """A temporary file name in ``path``'s folder, removed if it still exists afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _make_readable(path: Path) -> None:
    """Give the exported file the usual permissions (mkstemp creates it private)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


# --------------------------------------------------------------------------- TorchScript


def _export_torchscript(model: nn.Module, example: tuple[torch.Tensor, ...], tmp: Path, method: str) -> None:
    import torch

    with _quiet_export():
        if method == "script":
            scripted = torch.jit.script(model)
        else:
            scripted = torch.jit.trace(model, example, check_trace=False)
        scripted.save(str(tmp))


def _run_torchscript(path: Path, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    import torch

    with _quiet_export():
        loaded = torch.jit.load(str(path), map_location="cpu")
    loaded.eval()
    with torch.no_grad():
        return _flatten_outputs(loaded(*inputs))


# --------------------------------------------------------------------------- ONNX


def _require_onnx(exporter: str) -> None:
    missing = []
    for mod in ("onnx", "onnxruntime") + (("onnxscript",) if exporter != "legacy" else ()):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise MlcoreError(f"ONNX export needs {', '.join(missing)}: {ONNX_INSTALL_HINT}")


def _export_onnx(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    tmp: Path,
    *,
    dynamic_batch: bool,
    exporter: str,
    opset: int | None,
) -> None:
    import torch

    names = [f"input_{i}" for i in range(len(example))]
    batched = [t.dim() > 0 for t in example]
    with _quiet_export():
        if exporter == "dynamo":
            dynamic_shapes = None
            if dynamic_batch:
                batch = torch.export.Dim("batch", min=1)
                dynamic_shapes = tuple({0: batch} if b else None for b in batched)
            torch.onnx.export(
                model,
                example,
                str(tmp),
                dynamo=True,
                verbose=False,
                input_names=names,
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                opset_version=opset,
            )
        else:
            with torch.no_grad():
                outputs = _flatten_outputs(model(*example))
            out_names = [f"output_{i}" for i in range(len(outputs))]
            axes: dict[str, dict[int, str]] | None = None
            if dynamic_batch:
                axes = {n: {0: "batch"} for n, b in zip(names, batched, strict=True) if b}
                axes.update({n: {0: "batch"} for n, o in zip(out_names, outputs, strict=True) if o.dim() > 0})
            torch.onnx.export(
                model,
                example,
                str(tmp),
                dynamo=False,
                input_names=names,
                output_names=out_names,
                dynamic_axes=axes,
                opset_version=opset or 17,
            )


def _run_onnx(path: Path, inputs: tuple[torch.Tensor, ...]) -> list[Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {}
    graph_inputs = session.get_inputs()
    if len(graph_inputs) > len(inputs):
        raise MlcoreError(f"exported ONNX graph expects {len(graph_inputs)} inputs, got {len(inputs)}")
    # inputs unused by the graph are dropped by the exporter; match the rest by name
    by_name = {f"input_{i}": t for i, t in enumerate(inputs)}
    for i, gi in enumerate(graph_inputs):
        tensor = by_name.get(gi.name, inputs[i])
        feeds[gi.name] = tensor.detach().cpu().numpy()
    return list(session.run(None, feeds))


# --------------------------------------------------------------------------- entry point


def export_model(
    model: nn.Module,
    example_input: Any,
    path: str | Path,
    *,
    format: str = "onnx",
    dynamic_batch: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    onnx_exporter: str = "auto",
    torchscript_method: str = "auto",
    opset: int | None = None,
) -> ExportResult:
    """Export ``model`` to TorchScript or ONNX at ``path`` and verify the file against the eager model.

    Args:
        model: the model; exported on the CPU, in eval mode (the caller's model is not modified).
        example_input: a tensor or tuple of tensors with a batch dimension first, or ``None`` to use
            ``model.example_input(2)``.
        path: the output file (written atomically).
        format: ``"onnx"`` or ``"torchscript"``.
        dynamic_batch: export the batch dimension as dynamic and check batch sizes 1 and 3
            (else only the example's batch size).
        atol, rtol: tolerance of the comparison with the eager outputs.
        onnx_exporter: ``"auto"`` (torch.export-based, falling back to legacy), ``"dynamo"`` or ``"legacy"``.
        torchscript_method: ``"auto"`` (trace, then script if the trace does not match), ``"trace"`` or ``"script"``.
        opset: ONNX opset version (exporter default when ``None``).

    Returns:
        an :class:`ExportResult`; ``ok`` is ``False`` when the exported outputs differ beyond tolerance.
    """
    import torch

    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not allowed (allowed: {', '.join(FORMATS)})")
    if onnx_exporter not in ONNX_EXPORTERS:
        raise ConfigError(f"onnx_exporter={onnx_exporter!r} is not allowed (allowed: {', '.join(ONNX_EXPORTERS)})")
    if torchscript_method not in ("auto", "trace", "script"):
        raise ConfigError(f"torchscript_method={torchscript_method!r} is not allowed (allowed: auto, trace, script)")
    if format == "onnx":
        _require_onnx(onnx_exporter)

    target = Path(path)
    eager_model = copy.deepcopy(model).cpu().eval()
    example = tuple(t.cpu() for t in resolve_example_input(eager_model, example_input))
    example_batch = _batch_size(example)
    if dynamic_batch and example_batch == 1:
        # torch.export specialises size-1 dimensions: trace with two rows instead
        example = _inputs_for_batch(eager_model, example, 2)
        example_batch = 2
    check_sizes = (1, 3) if dynamic_batch else (example_batch,)
    checks = [_inputs_for_batch(eager_model, example, b) if dynamic_batch else example for b in check_sizes]
    with torch.no_grad():
        expected = [_flatten_outputs(eager_model(*inputs)) for inputs in checks]

    if format == "torchscript":
        methods = ["trace", "script"] if torchscript_method == "auto" else [torchscript_method]
    else:
        methods = ["dynamo", "legacy"] if onnx_exporter == "auto" else [onnx_exporter]

    last_error: Exception | None = None
    result: ExportResult | None = None
    for method in methods:
        with _temp_beside(target) as tmp:
            try:
                if format == "torchscript":
                    _export_torchscript(eager_model, example, tmp, method)
                    outputs = [_run_torchscript(tmp, inputs) for inputs in checks]
                else:
                    _export_onnx(eager_model, example, tmp, dynamic_batch=dynamic_batch, exporter=method, opset=opset)
                    outputs = [_run_onnx(tmp, inputs) for inputs in checks]
            except MlcoreError:
                raise
            except Exception as exc:
                last_error = exc
                log.info("%s export with %s failed: %s", format, method, str(exc).splitlines()[0] if str(exc) else exc)
                continue
            diffs = [_compare(e, o, atol, rtol) for e, o in zip(expected, outputs, strict=True)]
            max_diff = max(d for d, _ in diffs)
            ok = all(o for _, o in diffs)
            if ok or result is None or max_diff < result.max_abs_diff:
                _make_readable(tmp)
                os.replace(tmp, target)
                result = ExportResult(target, format, max_diff, atol, rtol, ok, check_sizes, method)
            if ok:
                break
            log.info("%s export with %s does not match the eager model (max diff %.3g)", format, method, max_diff)
    if result is None:
        reason = str(last_error).strip().splitlines()[0] if last_error and str(last_error).strip() else repr(last_error)
        raise MlcoreError(f"cannot export {type(model).__name__} to {format}: {reason}")
    log.info(result.summary())
    return result
