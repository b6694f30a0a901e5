"""The layout of a release directory and how one trained run becomes a released model.

::

    pretrained_models/
      README.md  QUICKSTART.md  release.json
      grid/VIN_maze15/
        checkpoints/best.pt       # weights + meta only (no optimizer state): `mlcore evaluate` accepts it
        config.toml               # the training run's config (`mlcore run --config` retrains it)
        VIN_maze15_info.json      # algorithm, environment, accuracies, losses, sizes, times, notes
        evaluation/metrics.json   # `mlcore evaluate` of the released checkpoint
        report.md                 # the training run's report
      graph/...  continuous/...

A model directory is complete when its ``<name>_info.json`` exists: it is written last, atomically.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcore.errors import CheckpointError, DataError

__all__ = [
    "CHECKPOINT",
    "INFO_FORMAT",
    "info_path",
    "model_dir",
    "package_run",
    "read_info",
    "released_models",
    "sha256_of",
]

#: The checkpoint of a released model, relative to its directory.
CHECKPOINT = "checkpoints/best.pt"
#: Version of the ``<name>_info.json`` layout.
INFO_FORMAT = 1
#: Fields every info file holds (checked by :func:`read_info`).
INFO_FIELDS = (
    "name",
    "category",
    "algorithm",
    "model",
    "environment",
    "training_config",
    "test_accuracy",
    "validation_accuracy",
    "final_loss",
    "parameter_count",
    "file_size_bytes",
    "training_time_seconds",
    "created",
    "notes",
)


def model_dir(root: str | Path, category: str, name: str) -> Path:
    """``<root>/<category>/<name>``."""
    return Path(root) / category / name


def info_path(directory: str | Path, name: str) -> Path:
    """``<directory>/<name>_info.json``."""
    return Path(directory) / f"{name}_info.json"


def sha256_of(path: str | Path) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_info(path: str | Path) -> dict[str, Any]:
    """A model's info file, checked for the fields a release needs; one-line DataError otherwise."""
    from mlcore.io import read_json

    p = Path(path)
    try:
        info = read_json(p)
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: not a readable info file ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict):
        raise DataError(f"{p}: an info file must hold a JSON object")
    missing = [f for f in INFO_FIELDS if f not in info]
    if missing:
        raise DataError(f"{p}: info file lacks {', '.join(missing)}")
    return info


def released_models(root: str | Path) -> dict[str, Path]:
    """``{name: model directory}`` of every complete model under a release root (sorted by name)."""
    found: dict[str, Path] = {}
    base = Path(root)
    for info in sorted(base.glob("*/*/*_info.json")):
        name = info.name[: -len("_info.json")]
        if info.parent.name == name:
            found[name] = info.parent
    return dict(sorted(found.items()))


def _final_losses(history: list[Mapping[str, Any]]) -> dict[str, float | None]:
    """The last epoch's train and validation loss (``None`` when not recorded)."""
    if not history:
        return {"train": None, "val": None, "epoch": None}
    last = history[-1]

    def num(key: str) -> float | None:
        value = last.get(key)
        return float(value) if isinstance(value, int | float) else None

    return {"train": num("train_loss"), "val": num("val_loss"), "epoch": num("epoch")}


def package_run(
    run_dir: str | Path,
    target: str | Path,
    *,
    entry: Any,
    device: str = "cpu",
) -> dict[str, Any]:
    """Lay out the trained run in ``run_dir`` as the released model ``entry`` in ``target``; returns its info.

    Copies the best weights (without optimizer state) to ``checkpoints/best.pt`` with the release
    name in its meta, the run's ``config.toml`` and ``report.md``, evaluates the released checkpoint
    with :func:`mlcore.api.evaluate` (``evaluation/metrics.json``) and on the validation split
    (:func:`validation_metrics`), and writes ``<name>_info.json`` last.
    """
    from mlcore import api
    from mlcore.io import atomic_write_json, atomic_write_text, read_json
    from mlcore.training.checkpoint import (
        CHECKPOINT_FORMAT,
        CHECKPOINT_KIND,
        build_model,
        load_checkpoint,
        write_payload,
    )

    run = Path(run_dir)
    out = Path(target)
    source = run / "checkpoints" / "best.pt"
    if not source.exists():
        source = run / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(source)
    meta = dict(ckpt["meta"])
    meta["release"] = {"name": entry.name, "category": entry.category, "algorithm": entry.algorithm}
    payload = {"kind": CHECKPOINT_KIND, "format": CHECKPOINT_FORMAT, "model": ckpt["model"], "meta": meta}
    checkpoint = out / CHECKPOINT
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    write_payload(checkpoint, payload)
    atomic_write_text(out / "config.toml", (run / "config.toml").read_text(encoding="utf-8"))
    if (run / "report.md").exists():
        atomic_write_text(out / "report.md", (run / "report.md").read_text(encoding="utf-8"))
    test = api.evaluate(checkpoint, out_dir=out / "evaluation", device=device)
    validation = validation_metrics(checkpoint, device=device)
    stats = read_json(run / "training_stats.json")
    summary = read_json(run / "summary.json")
    from mlcore.config import load_file

    model = build_model(ckpt)  # parameters, not buffers: counted on the rebuilt model
    params = sum(int(p.numel()) for p in model.parameters())
    model_entry = meta["components"]["model"]
    info: dict[str, Any] = {
        "name": entry.name,
        "format": INFO_FORMAT,
        "category": entry.category,
        "algorithm": entry.algorithm,
        "model": model_entry["name"],
        "plugin": meta.get("plugin", ""),
        "plugin_version": meta.get("plugin_version", ""),
        "mlcore_version": meta.get("mlcore_version", ""),
        "environment": entry.environment,
        "pipeline": entry.pipeline,
        "seed": entry.seed,
        "training_config": load_file(out / "config.toml"),
        "test_accuracy": _accuracy(test),
        "validation_accuracy": _accuracy(validation),
        "test_metrics": dict(test),
        "validation_metrics": dict(validation),
        "final_loss": _final_losses(stats.get("history") or []),
        "best_val_loss": stats.get("best_metric"),
        "epochs": stats.get("epochs_run"),
        "parameter_count": params,
        "checkpoint": CHECKPOINT,
        "file_size_bytes": checkpoint.stat().st_size,
        "sha256": sha256_of(checkpoint),
        "training_time_seconds": float(stats.get("train_seconds") or 0.0),
        "run_seconds": float(summary.get("seconds") or 0.0),
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "notes": entry.notes,
    }
    atomic_write_json(info_path(out, entry.name), info)
    return info


class ValidationView:
    """A data module seen through its validation split: ``test`` becomes ``val`` wherever it is asked for.

    ``test_set()`` returns ``val_set()`` and every method called with the split name ``"test"``
    (``mazes_of("test")``...) gets ``"val"``, so an evaluator written for the test split scores
    the validation split unchanged.
    """

    def __init__(self, data: Any) -> None:
        self._data = data

    def prepare(self) -> ValidationView:
        """Prepare the wrapped data module; returns the view."""
        self._data.prepare()
        return self

    def test_set(self) -> Any:
        """The validation set."""
        return self._data.val_set()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._data, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple("val" if a == "test" else a for a in args)
            kwargs = {k: "val" if v == "test" else v for k, v in kwargs.items()}
            return attr(*args, **kwargs)

        return call


def validation_metrics(checkpoint: str | Path, *, device: str = "cpu") -> dict[str, float]:
    """The checkpoint's evaluator (from its meta) on the validation split of its data ({} when it has none)."""
    from mlcore import api
    from mlcore.training.checkpoint import build_model, load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    section = (ckpt["meta"].get("components") or {}).get("evaluator")
    if not section:
        return {}
    data = api.rebuild_data(ckpt, checkpoint)
    if data.val_set() is None or len(data.val_set()) == 0:
        return {}
    evaluator = api.build("evaluator", section["name"], section.get("config") or {})
    model = build_model(ckpt, device=device)
    return dict(evaluator.evaluate(model, ValidationView(data), device=device))


def _accuracy(metrics: Mapping[str, Any]) -> float | None:
    """The headline accuracy of an evaluation: ``action_accuracy`` (grid and graph planners), else ``accuracy``."""
    for key in ("action_accuracy", "accuracy"):
        value = metrics.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def remove_incomplete(directory: Path, name: str) -> None:
    """Delete a model directory that has no info file (a packaging step that was killed half way)."""
    if directory.exists() and not info_path(directory, name).exists():
        shutil.rmtree(directory)


def check_checkpoint_release(ckpt: Mapping[str, Any], name: str, where: str) -> None:
    """Refuse a checkpoint whose meta says it belongs to another released model."""
    recorded = ((ckpt.get("meta") or {}).get("release") or {}).get("name")
    if recorded is not None and recorded != name:
        raise CheckpointError(f"{where} holds the released model {recorded!r}, not {name!r}")
