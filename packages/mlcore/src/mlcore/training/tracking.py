"""Experiment trackers: where the trainer sends scalars and histograms.

Trackers named in ``trainer.trackers`` are built through the registry (kind ``tracker``).
Writing one means subclassing :class:`Tracker`::

    from mlcore.training.tracking import Tracker

    class PrintTracker(Tracker):
        def log_scalars(self, values, step):
            print(step, values)
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.config import flatten_dotted
from mlcore.errors import MlcoreError

if TYPE_CHECKING:
    import torch


class Tracker:
    """Base class of experiment trackers; every method is a no-op."""

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Open the run; ``config`` is the trainer config (plain data) plus the run's meta."""

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        """Record scalar values (``{"loss/train": 0.1, ...}``) at ``step``."""

    def log_histogram(self, name: str, values: torch.Tensor, step: int) -> None:
        """Record a histogram of ``values`` at ``step``."""

    def close(self) -> None:
        """Flush and release resources."""


class TensorBoardTracker(Tracker):
    """TensorBoard event files under ``<run_dir>/tensorboard`` (``tensorboard --logdir <run_dir>``)."""

    def __init__(self) -> None:
        self.writer: Any = None
        self.log_dir: Path | None = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Create the ``SummaryWriter`` and record the config as text."""
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(run_dir) / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        text = json.dumps(_jsonable(config), indent=2, sort_keys=True)
        self.writer.add_text("config", f"```\n{text}\n```", 0)

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        """``add_scalar`` for each finite value."""
        if self.writer is None:
            return
        for key, value in values.items():
            if value is not None:
                self.writer.add_scalar(key, float(value), step)

    def log_histogram(self, name: str, values: torch.Tensor, step: int) -> None:
        """``add_histogram`` of the (finite) values."""
        if self.writer is None or values.numel() == 0:
            return
        values = values.detach().float().cpu().reshape(-1)
        values = values[values.isfinite()]
        if values.numel():
            self.writer.add_histogram(name, values, step)

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


class MLflowTracker(Tracker):
    """MLflow tracking (``pip install mlflow``).

    Uses ``MLFLOW_TRACKING_URI`` when set, otherwise a file store under ``<run_dir>/mlruns`` (MLflow 3
    refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``, which is then set for this process
    when the variable is not set already).
    """

    def __init__(self) -> None:
        if importlib.util.find_spec("mlflow") is None:
            raise MlcoreError("tracker 'mlflow' needs MLflow, which is not installed: pip install mlflow")
        self.mlflow: Any = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Start an MLflow run named after the run directory and log the flattened config as params."""
        import mlflow

        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((Path(run_dir).resolve() / "mlruns").as_uri())
        mlflow.start_run(run_name=Path(run_dir).name)
        params = {k: str(v)[:250] for k, v in flatten_dotted(_jsonable(config)).items()}
        if params:
            mlflow.log_params(params)

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        """``mlflow.log_metrics`` (``/`` in names becomes ``.``)."""
        if self.mlflow is None:
            return
        metrics = {k.replace("/", "."): float(v) for k, v in values.items() if v is not None}
        if metrics:
            self.mlflow.log_metrics(metrics, step=step)

    def log_histogram(self, name: str, values: torch.Tensor, step: int) -> None:
        """MLflow has no histograms: logs the mean and standard deviation instead."""
        if self.mlflow is None or values.numel() == 0:
            return
        v = values.detach().float().reshape(-1)
        std = float(v.std()) if v.numel() > 1 else 0.0
        self.log_scalars({f"{name}/mean": float(v.mean()), f"{name}/std": std}, step)

    def close(self) -> None:
        """End the MLflow run."""
        if self.mlflow is not None:
            self.mlflow.end_run()
            self.mlflow = None


def _jsonable(obj: Any) -> Any:
    from mlcore.io import to_jsonable

    return to_jsonable(obj)


def start_trackers(trackers: list[Tracker], run_dir: Path, config: dict[str, Any]) -> list[Tracker]:
    """Start every tracker (``config["meta"]`` without its ``data_state``); on a failure close those started."""
    config = {**config, "meta": {k: v for k, v in (config.get("meta") or {}).items() if k != "data_state"}}
    started: list[Tracker] = []
    try:
        for tracker in trackers:
            tracker.start(run_dir, config)
            started.append(tracker)
    except BaseException:
        for tracker in started:
            tracker.close()
        raise
    return started
