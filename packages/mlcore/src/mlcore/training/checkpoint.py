"""Self-contained checkpoints: weights plus everything needed to rebuild and resume.

A checkpoint is a ``dict`` saved with :func:`torch.save` holding only tensors and plain Python
values, so it loads with ``torch.load(weights_only=True)`` and nothing needs allow-listing::

    {"kind": "mlcore-checkpoint", "format": CHECKPOINT_FORMAT,
     "model": state_dict, "meta": {plugin, versions, components, data_state, ...},
     ...trainer state (epoch, optimizer, scheduler, scaler, rng, history, ...)}

``meta["components"]["model"]`` names the registered model and holds its unstructured config,
so :func:`build_model` can rebuild the model from the file alone.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.errors import CheckpointError, MlcoreError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlcore.data import DataModule

log = logging.getLogger(__name__)

#: Version of the checkpoint layout; bumped when a reader of the old layout would misread it.
CHECKPOINT_FORMAT = 1
CHECKPOINT_KIND = "mlcore-checkpoint"


# --------------------------------------------------------------------------- meta


def plain_values(obj: Any, where: str = "state") -> Any:
    """``obj`` reduced to tensors and plain Python values (what ``weights_only=True`` loads).

    NumPy arrays become tensors and NumPy scalars Python numbers; attrs instances are
    unstructured. Anything else raises :class:`CheckpointError` naming the offending key.
    """
    import torch

    if obj is None or isinstance(obj, bool | int | float | str | bytes | torch.Tensor):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {k: plain_values(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [plain_values(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, torch.device | torch.dtype):
        return str(obj)
    try:
        import numpy as np

        if isinstance(obj, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(obj))
        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    import attrs

    if attrs.has(type(obj)):
        from mlcore.config import unstructure

        return plain_values(unstructure(obj), where)
    raise CheckpointError(f"cannot store {where} in a checkpoint: {type(obj).__name__} is not a tensor or plain value")


def _component_entry(name: str, config: Any) -> dict[str, Any]:
    from mlcore.config import ComponentConfig, unstructure

    if isinstance(config, ComponentConfig):  # a [model] section: keep only the component's own config
        config = config.config
    if config is None:
        cfg = None
    elif isinstance(config, Mapping):
        cfg = dict(config)
    else:
        cfg = unstructure(config)
    return {"name": name, "config": plain_values(cfg, f"components.{name}.config")}


def make_meta(
    *, plugin: str, components: Mapping[str, tuple[str, Any]], data: DataModule | None = None, **extra: Any
) -> dict[str, Any]:
    """Provenance stored in every checkpoint so it can be used on its own.

    Args:
        plugin: the plugin the run belongs to (``"mlcore"`` for built-ins).
        components: ``{kind: (name, config)}``, e.g. ``{"model": ("lstm", LSTMConfig(...)), "loss": ("mse", None)}``.
        data: the data module; it is prepared (``prepare()``, idempotent) and its ``state_dict()``
            (normalisation statistics...) is stored as ``data_state``.
        extra: any further plain values (seed, pipeline, ...).

    Returns:
        ``{"plugin", "plugin_version", "mlcore_version", "plugin_api", "components", "data_state", **extra}``.
    """
    from mlcore._version import PLUGIN_API_VERSION, __version__

    plugin_version = __version__ if plugin == "mlcore" else ""
    if not plugin_version:
        try:
            from mlcore.registry import get_registry

            info = get_registry().plugins.get(plugin)
            plugin_version = info.version if info is not None else ""
        except Exception:  # provenance only: never fail a run over it
            plugin_version = ""
    if data is not None and hasattr(data, "prepare"):
        data.prepare()
    return {
        "plugin": plugin,
        "plugin_version": plugin_version,
        "mlcore_version": __version__,
        "plugin_api": PLUGIN_API_VERSION,
        "components": {kind: _component_entry(name, cfg) for kind, (name, cfg) in components.items()},
        "data_state": plain_values(data.state_dict() if data is not None else {}, "data_state"),
        **{k: plain_values(v, k) for k, v in extra.items()},
    }


# --------------------------------------------------------------------------- save / load


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / DataParallel / ``torch.compile`` wrappers."""
    from torch import nn

    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module  # type: ignore[assignment]
        elif type(model).__name__ == "OptimizedModule" and hasattr(model, "_orig_mod"):
            model = model._orig_mod  # type: ignore[assignment]
        else:
            return model


def checkpoint_payload(*, model: nn.Module, meta: Mapping[str, Any] | None, **state: Any) -> dict[str, Any]:
    """The dict :func:`save_checkpoint` writes (tensors shared with the live model, not copied)."""
    return {
        "kind": CHECKPOINT_KIND,
        "format": CHECKPOINT_FORMAT,
        "model": unwrap_model(model).state_dict(),
        "meta": plain_values(dict(meta or {}), "meta"),
        **{k: plain_values(v, k) for k, v in state.items()},
    }


class _RecordingFile:
    """A binary file wrapper that remembers the first :class:`OSError` of a write.

    ``torch.save`` turns a failed write into a ``RuntimeError`` without the OS cause; this keeps it.
    """

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._fh.write(data)  # type: ignore[no-any-return]
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self._fh.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def write_error(path: str | Path, exc: OSError) -> CheckpointError:
    """The one-line error for a file that could not be written: the path and the OS's reason."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return CheckpointError(f"could not write {path}: {reason}")


def write_payload(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """``torch.save`` a checkpoint payload atomically (temporary file, fsync, rename).

    A failed write (disk full, read-only file system...) is a one-line :class:`CheckpointError`
    naming ``path`` and the OS's reason; the previous file at ``path`` is left untouched.
    """
    import torch

    from mlcore.io import atomic_write

    recorder: list[_RecordingFile] = []

    def save(fh: Any) -> None:
        recorder.append(_RecordingFile(fh))
        torch.save(dict(payload), recorder[0])

    try:
        return atomic_write(path, save)
    except OSError as exc:
        raise write_error(path, exc) from None
    except RuntimeError:
        if recorder and recorder[0].error is not None:
            raise write_error(path, recorder[0].error) from None
        raise


def save_checkpoint(path: str | Path, *, model: nn.Module, meta: Mapping[str, Any] | None, **state: Any) -> Path:
    """Write a checkpoint atomically (a reader never sees a half-written file); returns the path.

    ``state`` holds further entries (``epoch``, ``optimizer``, ...); everything must reduce to
    tensors and plain Python values (see :func:`plain_values`).
    """
    return write_payload(path, checkpoint_payload(model=model, meta=meta, **state))


def detached_copy(obj: Any) -> Any:
    """A copy of nested dicts/lists/tuples whose tensors are detached clones (safe to write later)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, Mapping):
        return {k: detached_copy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [detached_copy(v) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    return obj


#: The former name of :func:`plain_values`, kept for code outside the trainer that imports it.
plain = plain_values


class CheckpointWriter:
    """Runs checkpoint writes one at a time and in order, inline or on one background thread.

    With ``background=True`` :meth:`submit` returns at once and the job runs on a worker thread;
    the next :meth:`submit`, :meth:`wait` or :meth:`close` first waits for it and re-raises its
    error. Jobs must own their data (see :func:`detached_copy`): the caller goes on changing the model.
    Like Lightning's ``AsyncCheckpointIO``, but only the file I/O moves off the training thread.
    """

    def __init__(self, background: bool = True) -> None:
        self.background = bool(background)
        self._pool: Any = None
        self._pending: Any = None

    def submit(self, job: Any) -> None:
        """Run ``job()`` after every earlier job (inline when not in the background)."""
        self.wait()
        if not self.background:
            job()
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlcore-checkpoint")
        self._pending = self._pool.submit(job)

    def failed(self) -> bool:
        """Whether the submitted job has already ended with an error (does not block)."""
        pending = self._pending
        return pending is not None and pending.done() and pending.exception() is not None

    def wait(self) -> None:
        """Block until the submitted job is done; re-raise its exception."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last job and stop the worker thread."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


def load_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); every failure is a one-line :class:`CheckpointError`.

    The returned dict gets a ``"path"`` entry (the file it came from).
    """
    import torch

    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} is not a file")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            raise CheckpointError(
                f"checkpoint {p} is not an mlcore checkpoint: it holds a {found.group(1)} object, "
                "which cannot be loaded safely (weights_only)"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        reason = detail.group(1).strip() if detail else (text.strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"checkpoint {p} is corrupt, truncated or not a torch file ({reason})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError, IndexError) as exc:
        first = str(exc).strip().split(". ")[0].splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {p} is corrupt, truncated or not a torch file ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND or "format" not in ckpt:
        raise CheckpointError(f"{p} is not an mlcore checkpoint (no 'kind: {CHECKPOINT_KIND}' entry)")
    fmt = ckpt["format"]
    if not isinstance(fmt, int) or fmt < 1:
        raise CheckpointError(f"checkpoint {p} has an invalid format number {fmt!r}")
    if fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {p} uses format {fmt}, written by a newer mlcore; this mlcore reads format "
            f"{CHECKPOINT_FORMAT} at most (upgrade mlcore)"
        )
    if not isinstance(ckpt.get("model"), dict) or not isinstance(ckpt.get("meta"), dict):
        raise CheckpointError(f"checkpoint {p} is incomplete: it lacks the model weights or meta")
    ckpt["path"] = str(p)
    return ckpt


def _where(ckpt: Mapping[str, Any]) -> str:
    return str(ckpt.get("path") or "<in-memory checkpoint>")


def model_name(ckpt: Mapping[str, Any]) -> tuple[str, str]:
    """``(model name, plugin)`` recorded in a checkpoint's meta; CheckpointError when absent."""
    meta = ckpt.get("meta") or {}
    entry = (meta.get("components") or {}).get("model")
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise CheckpointError(
            f"checkpoint {_where(ckpt)} does not record which model it holds (it was saved without meta)"
        )
    return entry["name"], str(meta.get("plugin", "?"))


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], *, where: str, name: str = "") -> None:
    """``model.load_state_dict(state)`` with a one-line CheckpointError listing mismatched keys/shapes."""
    target = unwrap_model(model)
    own = target.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append(f"shape mismatch {'; '.join(shapes[:3])}{' ...' if len(shapes) > 3 else ''}")
        what = f"model {name!r}" if name else "this model"
        raise CheckpointError(f"checkpoint {where} does not fit {what}: {'; '.join(parts)}")
    target.load_state_dict(dict(state))


def build_model(ckpt: dict[str, Any] | str | Path, *, expect: str | None = None, device: Any = "cpu") -> nn.Module:
    """Rebuild the model recorded in a checkpoint through the registry and load its weights.

    Args:
        ckpt: a checkpoint dict (from :func:`load_checkpoint`) or a path.
        expect: the model name the caller needs; a different one is a :class:`CheckpointError`.
        device: where to put the model.

    Returns:
        The model in ``eval()`` mode on ``device``.
    """
    from mlcore.registry import get_registry

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    where = _where(ckpt)
    name, plugin = model_name(ckpt)
    if expect is not None and name != expect:
        raise CheckpointError(f"checkpoint {where} holds model {name!r} from plugin {plugin!r}, not {expect!r}")
    registry = get_registry()
    try:
        spec = registry.get("model", name)
    except MlcoreError as exc:
        state = registry.availability(plugin)
        why = f"which is {state}" if state != "loaded" else f"which does not provide it ({exc})"
        raise CheckpointError(f"checkpoint {where} needs model {name!r} from plugin {plugin!r}, {why}") from None
    config = ckpt["meta"]["components"]["model"].get("config")
    try:
        model = spec.build(spec.make_config(config or {}, where="model.")) if spec.config else spec.build()
    except CheckpointError:
        raise
    except MlcoreError as exc:
        raise CheckpointError(
            f"checkpoint {where}: its model config does not fit {spec.qualified_name}: {exc}"
        ) from None
    load_model_state(model, ckpt["model"], where=where, name=name)
    return model.to(device).eval()  # type: ignore[no-any-return]
