"""``check-release``: load every released model, run it on sample data, evaluate it, measure it.

A model passes when its checkpoint loads safely and matches its info file (size and SHA-256),
a forward pass on a batch of its test data gives finite outputs shaped like the targets,
``mlcore evaluate`` of its checkpoint reproduces the accuracy its info file records, and the
checkpoint is smaller than the size limit (10 MB).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from mlcore.errors import MlcoreError

__all__ = ["DEFAULT_MAX_BYTES", "CheckRow", "check_release", "format_rows"]

#: The size limit of one released checkpoint: 10 MB.
DEFAULT_MAX_BYTES = 10_000_000


@attrs.define
class CheckRow:
    """The check of one released model.

    Attributes:
        name, category, algorithm: what it is.
        ok: whether every check passed; ``problems`` says what failed otherwise.
        file_bytes: size of the checkpoint file.
        parameters: parameter count of the loaded model.
        model_bytes: memory held by its parameters and buffers.
        peak_rss_bytes: the process's peak resident memory after loading, inference and evaluation.
        accuracy: the action accuracy ``mlcore evaluate`` measured now (``recorded``: the info file's).
        metrics: every metric of that evaluation.
        seconds: time the check of this model took.
    """

    name: str
    category: str = ""
    algorithm: str = ""
    ok: bool = False
    problems: list[str] = attrs.field(factory=list)
    file_bytes: int = 0
    parameters: int = 0
    model_bytes: int = 0
    peak_rss_bytes: int = 0
    accuracy: float | None = None
    recorded: float | None = None
    metrics: dict[str, float] = attrs.field(factory=dict)
    seconds: float = 0.0


def _peak_rss() -> int:
    """The process's peak resident set size in bytes (``ru_maxrss`` is KiB on Linux, bytes on macOS; 0 on Windows)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def check_release(
    source: str | Path,
    *,
    names: list[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    evaluate: bool = True,
    device: str = "cpu",
    tolerance: float = 1e-6,
) -> list[CheckRow]:
    """Check every released model at ``source`` (a release directory, run directory or ``.tar.gz``).

    ``names`` restricts the check to some models; ``evaluate=False`` skips ``mlcore evaluate``
    (loading, inference and size are still checked). Returns one :class:`CheckRow` per model.
    A missing source or archive is a one-line :class:`~mlcore.errors.DataError`.
    """
    from mlcore_diffplan_vins.release.loading import is_archive, release_root

    src = Path(source)
    if is_archive(src):
        from mlcore_diffplan_vins.release.archive import extract_release

        with tempfile.TemporaryDirectory(prefix="mlcore-check-release-") as tmp:
            return _check_root(extract_release(src, tmp), names, max_bytes, evaluate, device, tolerance)
    return _check_root(release_root(src), names, max_bytes, evaluate, device, tolerance)


def _check_root(
    root: Path, names: list[str] | None, max_bytes: int, evaluate: bool, device: str, tolerance: float
) -> list[CheckRow]:
    from mlcore.errors import DataError
    from mlcore_diffplan_vins.release.layout import released_models

    models = released_models(root)
    if not models:
        raise DataError(f"{root}: holds no released model (no <category>/<name>/<name>_info.json)")
    unknown = [n for n in names or [] if n not in models]
    if unknown:
        raise DataError(f"no released model {unknown[0]!r} in {root} (released: {', '.join(models)})")
    return [_check_one(root, n, max_bytes, evaluate, device, tolerance) for n in (names or list(models))]


def _check_one(root: Path, name: str, max_bytes: int, evaluate: bool, device: str, tolerance: float) -> CheckRow:
    from mlcore_diffplan_vins.release.layout import CHECKPOINT, info_path, read_info, released_models, sha256_of
    from mlcore_diffplan_vins.release.loading import load_pretrained

    start = time.perf_counter()
    directory = released_models(root)[name]
    row = CheckRow(name=name, category=directory.parent.name)
    checkpoint = directory / CHECKPOINT
    if checkpoint.exists():
        row.file_bytes = checkpoint.stat().st_size
        if row.file_bytes >= max_bytes:
            row.problems.append(f"checkpoint is {row.file_bytes / 1e6:.2f} MB (limit {max_bytes / 1e6:g} MB)")
    try:
        info = read_info(info_path(directory, name))
        row.algorithm = str(info.get("algorithm", ""))
        recorded = info.get("test_accuracy")
        row.recorded = float(recorded) if isinstance(recorded, int | float) else None
        if checkpoint.exists():
            if info.get("file_size_bytes") != row.file_bytes:
                row.problems.append(
                    f"checkpoint size {row.file_bytes} differs from the info's {info.get('file_size_bytes')}"
                )
            elif info.get("sha256") and info["sha256"] != sha256_of(checkpoint):
                row.problems.append("checkpoint SHA-256 differs from the info file's (changed or corrupted)")
        loaded = load_pretrained(name, root, device=device)
        model = loaded.model
        row.parameters = sum(int(p.numel()) for p in model.parameters())
        if info.get("parameter_count") != row.parameters:
            row.problems.append(f"{row.parameters} parameters, the info file says {info.get('parameter_count')}")
        row.model_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
        _sample_inference(loaded, checkpoint, device)
        if evaluate:
            row.metrics = _evaluate(checkpoint, device)
            acc = row.metrics.get("action_accuracy", row.metrics.get("accuracy"))
            row.accuracy = float(acc) if acc is not None else None
            if row.accuracy is None or not math.isfinite(row.accuracy):
                row.problems.append("evaluation gave no finite accuracy")
            elif row.recorded is not None and abs(row.accuracy - row.recorded) > tolerance:
                row.problems.append(
                    f"evaluation gives accuracy {row.accuracy:.6f}, the info file says {row.recorded:.6f}"
                )
    except MlcoreError as exc:
        row.problems.append(str(exc))
    row.peak_rss_bytes = _peak_rss()
    row.ok = not row.problems
    row.seconds = time.perf_counter() - start
    return row


def _sample_inference(loaded: Any, checkpoint: Path, device: str) -> None:
    """One forward pass on a batch of the model's own test data: finite outputs shaped like the targets."""
    import torch
    from torch.utils.data import DataLoader

    from mlcore import api
    from mlcore.errors import DataError
    from mlcore.pipelines.recipe import expected_prediction_shape, shapes_match
    from mlcore.training.batches import move_to_device

    data = api.rebuild_data(loaded.checkpoint, checkpoint)
    dataset = data.test_set()
    batch = next(iter(DataLoader(dataset, batch_size=4, collate_fn=data.collate_fn))) if dataset is not None else None
    if batch is None:
        raise DataError(f"{checkpoint}: its data set has no test sample to run")
    pair = isinstance(batch, list | tuple) and len(batch) == 2
    inputs, targets = (batch[0], batch[1]) if pair else (batch, None)
    with torch.no_grad():
        out = loaded.model(move_to_device(inputs, device))
    pred = _first_tensor(out)
    if pred is None or not torch.isfinite(pred).all():
        raise DataError(f"{checkpoint}: the model's output on test samples is not finite")
    target = _first_tensor(targets)
    if target is not None and not shapes_match(pred.cpu(), target):
        raise DataError(
            f"{checkpoint}: output {list(pred.shape)} on test samples, expected {expected_prediction_shape(target)}"
        )


def _first_tensor(obj: Any) -> Any:
    """The first tensor in ``obj`` (itself, a sequence's or a mapping's first tensor value), else None."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else ()
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def _evaluate(checkpoint: Path, device: str) -> dict[str, float]:
    """``mlcore evaluate`` of the checkpoint into a temporary directory (the release is not written to)."""
    from mlcore import api

    with tempfile.TemporaryDirectory(prefix="mlcore-check-eval-") as tmp:
        return api.evaluate(checkpoint, out_dir=tmp, device=device)


def format_rows(rows: list[CheckRow]) -> str:
    """The check as a plain-text table (one line per model, then a verdict line)."""
    head = (
        f"{'model':<24} {'category':<10} {'params':>9} {'file MB':>8} {'model MB':>8} "
        f"{'peak RSS MB':>11} {'acc.':>7}  status"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        acc = f"{100 * r.accuracy:.1f}" if r.accuracy is not None else "-"
        status = "ok" if r.ok else "FAIL: " + "; ".join(r.problems)
        lines.append(
            f"{r.name:<24} {r.category:<10} {r.parameters:>9,} {r.file_bytes / 1e6:>8.3f} "
            f"{r.model_bytes / 1e6:>8.3f} {r.peak_rss_bytes / 1e6:>11.0f} {acc:>7}  {status}"
        )
    failed = [r.name for r in rows if not r.ok]
    lines.append(
        f"{len(rows) - len(failed)} of {len(rows)} models pass" + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return "\n".join(lines)
