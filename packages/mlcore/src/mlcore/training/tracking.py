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
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.config import flatten_dotted
from mlcore.errors import MlcoreError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


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


def run_artifacts(run_dir: Path) -> dict[str, list[Path]]:
    """The files of a finished run a tracker uploads: ``checkpoint`` (``best.pt``), ``plot`` (PNGs), ``stats``.

    The trainer closes its trackers after writing the final ``training_stats.json`` and plot.
    """
    run = Path(run_dir)
    best = run / "checkpoints" / "best.pt"
    return {
        "checkpoint": [best] if best.is_file() else [],
        "plot": sorted(run.glob("*.png")) + sorted(run.glob("plots/*.png")),
        "stats": [p for p in (run / "training_stats.json",) if p.is_file()],
    }


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


#: environment variable naming the MLflow registered model (``off`` = do not register)
MLFLOW_MODEL_ENV = "MLCORE_MLFLOW_MODEL"


class MLflowTracker(Tracker):
    """MLflow tracking (``pip install mlflow``): params, metrics, system metrics, artefacts, registry.

    Uses ``MLFLOW_TRACKING_URI`` when set, otherwise a file store under ``<run_dir>/mlruns`` (MLflow 3
    refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``, which is then set for this process
    when the variable is not set already). System metrics (CPU, memory, GPU) are sampled when psutil
    is installed. On close, ``best.pt`` is logged under ``model/``, the plots under ``plots/`` and
    ``training_stats.json``; then ``model/`` is registered as a new version of the registered model
    ``MLCORE_MLFLOW_MODEL`` (default ``<plugin>-<model>``; ``off`` skips it) when the tracking store has
    a model registry (a database URI such as ``sqlite:///mlflow.db``; a failure is logged).
    """

    def __init__(self) -> None:
        if importlib.util.find_spec("mlflow") is None:
            raise MlcoreError("tracker 'mlflow' needs MLflow, which is not installed: pip install mlflow")
        self.mlflow: Any = None
        self.run_dir: Path | None = None
        self.model_name = ""
        self.registered: Any = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Start an MLflow run named after the run directory and log the flattened config as params."""
        import mlflow

        self.mlflow = mlflow
        self.run_dir = Path(run_dir)
        if os.environ.get("MLFLOW_TRACKING_URI"):  # set_tracking_uri() of an earlier run would win over it
            mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        else:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((Path(run_dir).resolve() / "mlruns").as_uri())
        system = importlib.util.find_spec("psutil") is not None
        mlflow.start_run(run_name=Path(run_dir).name, log_system_metrics=system or None)
        params = {k: str(v)[:250] for k, v in flatten_dotted(_jsonable(config)).items()}
        if params:
            mlflow.log_params(params)
        self.model_name = registered_model_name(config)

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
        """Log the artefacts, register the best model, end the MLflow run."""
        if self.mlflow is None:
            return
        try:
            if self.run_dir is not None:
                found = run_artifacts(self.run_dir)
                for kind, folder in (("checkpoint", "model"), ("plot", "plots"), ("stats", None)):
                    for path in found[kind]:
                        self.mlflow.log_artifact(str(path), artifact_path=folder)
                if found["checkpoint"] and self.model_name:
                    self.registered = self._register()
        finally:
            self.mlflow.end_run()
            self.mlflow = None

    def _register(self) -> Any:
        """A new version of the registered model from this run's ``model/`` artefacts (None on failure)."""
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        run = self.mlflow.active_run()
        client = MlflowClient()
        try:
            try:
                client.get_registered_model(self.model_name)
            except MlflowException:
                client.create_registered_model(self.model_name, description="mlcore best checkpoints (best.pt)")
            source = f"{run.info.artifact_uri.rstrip('/')}/model"
            version = client.create_model_version(self.model_name, source, run_id=run.info.run_id)
        except MlflowException as exc:
            log.warning("mlflow: could not register model %r (%s)", self.model_name, str(exc).splitlines()[0])
            return None
        log.info("mlflow: registered %s version %s", self.model_name, version.version)
        return version


def registered_model_name(config: dict[str, Any]) -> str:
    """``MLCORE_MLFLOW_MODEL``, or ``<plugin>-<model>`` from the run's meta ("" = do not register)."""
    name = os.environ.get(MLFLOW_MODEL_ENV, "").strip()
    if name.lower() == "off":
        return ""
    if name:
        return name
    meta = config.get("meta") or {}
    model = ((meta.get("components") or {}).get("model") or {}).get("name") or "model"
    plugin = meta.get("plugin") or "mlcore"
    return f"{plugin}-{model}"


class WandbTracker(Tracker):
    """Weights & Biases (``pip install mlcore[wandb]``): scalars, config, system metrics, artefacts.

    Configured by wandb's own environment variables: ``WANDB_PROJECT`` (default ``mlcore``),
    ``WANDB_ENTITY``, ``WANDB_MODE`` (``offline`` writes ``<run_dir>/wandb/offline-run-*`` without
    any network; ``wandb sync`` uploads it later), ``WANDB_DIR`` (default: the run directory).
    wandb samples system metrics (CPU, memory, GPU) on its own. On close, ``best.pt`` is logged as
    a ``model`` artefact and the plots as images.
    """

    def __init__(self) -> None:
        if importlib.util.find_spec("wandb") is None:
            raise MlcoreError("tracker 'wandb' needs wandb, which is not installed: pip install 'mlcore[wandb]'")
        self.run: Any = None
        self.run_dir: Path | None = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """``wandb.init`` named after the run directory, with the flattened config as hyper-parameters."""
        import wandb

        self.run_dir = Path(run_dir)
        directory = os.environ.get("WANDB_DIR") or str(self.run_dir.resolve())
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "mlcore",
            name=self.run_dir.name,
            dir=directory,
            config=flatten_dotted(_jsonable(config)),
            reinit="create_new",
        )

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        """``run.log`` of the values, with ``step`` as the x axis (``mlcore_step``)."""
        if self.run is None:
            return
        clean = {k: float(v) for k, v in values.items() if v is not None}
        if clean:
            self.run.log({**clean, "mlcore_step": step})

    def log_histogram(self, name: str, values: torch.Tensor, step: int) -> None:
        """A ``wandb.Histogram`` of the finite values."""
        if self.run is None or values.numel() == 0:
            return
        import wandb

        v = values.detach().float().cpu().reshape(-1)
        v = v[v.isfinite()]
        if v.numel():
            import numpy as np

            hist = wandb.Histogram(np_histogram=np.histogram(v.numpy(), bins=64))  # 64 bins, as wandb's default
            self.run.log({name: hist, "mlcore_step": step})

    def close(self) -> None:
        """Log the best checkpoint as a ``model`` artefact and the plots as images; finish the run."""
        if self.run is None:
            return
        import wandb

        try:
            if self.run_dir is not None:
                found = run_artifacts(self.run_dir)
                if found["checkpoint"] or found["stats"]:
                    artifact = wandb.Artifact(f"{_artifact_name(self.run_dir.name)}-model", type="model")
                    for path in [*found["checkpoint"], *found["stats"]]:
                        artifact.add_file(str(path))
                    self.run.log_artifact(artifact)
                if found["plot"]:
                    self.run.log({f"plots/{p.stem}": wandb.Image(str(p)) for p in found["plot"]})
        finally:
            self.run.finish()
            self.run = None


def _artifact_name(name: str) -> str:
    """wandb artefact names allow letters, digits, ``-``, ``_`` and ``.``."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "run"


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
